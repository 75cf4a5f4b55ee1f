/*
 * denoise_file: denoises a raw Bayer frame stored as a binary PGM with rawnr's C API.
 *
 *   denoise_file MODEL.rnm IN.pgm OUT.pgm [--cfa grbg] [--black 25] [--white 1023]
 *                [--iso 3200 | --noise K,S] [--tile 256] [--halo N] [--pad N] [--load]
 *                [--detail] [--threads N] [--runs N]
 *
 * The model is opened by path (memory-mapped, zero-copy) or, with --load, read into an aligned
 * buffer and used in place. The frame is denoised in one call on the calling thread, or with
 * --threads N in N parts (rawnr_denoise_frame_part) on N threads of ours, each with its own
 * scratch; --runs N times N frames and prints the fastest. The
 * denoiser's plan and the scratch are caller memory (malloc here, static arrays on a
 * microcontroller: see stripe_isp.c). --pad N adds N pixels of padding to every row of the
 * input and output buffers (their strides differ from the width). OUT.pgm is 16-bit.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, pthreads */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "example_args.h"
#include "pgm_io.h"
#include "rawnr.h"

/* Reads a whole file into 4-byte aligned memory (for rawnr_model_load). */
static void *read_file_aligned(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    long n;
    if (!f) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n); /* malloc memory is aligned for any type */
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

/* One thread's share of a frame: part `part` of `n_parts`, with its own scratch. */
typedef struct {
    const rawnr_denoiser *den;
    uint32_t part, n_parts;
    const uint16_t *in;
    uint16_t *out;
    size_t frame_bytes, stride_bytes, scratch_size;
    void *scratch;
    rawnr_status status;
} part_job;

static void *run_part(void *arg) {
    part_job *j = arg;
    j->status = rawnr_denoise_frame_part(j->den, j->part, j->n_parts, j->in, j->frame_bytes,
                                         j->stride_bytes, j->out, j->frame_bytes,
                                         j->stride_bytes, j->scratch, j->scratch_size);
    return NULL;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Denoises the frame once: one call, or `n` parts on `n` threads. */
static rawnr_status denoise_once(part_job *jobs, unsigned n) {
    pthread_t tid[64];
    if (n == 1) {
        run_part(&jobs[0]);
        return jobs[0].status;
    }
    for (unsigned t = 0; t < n; t++) {
        if (pthread_create(&tid[t], NULL, run_part, &jobs[t]) != 0) {
            return RAWNR_ERR_BAD_ARGUMENT;
        }
    }
    for (unsigned t = 0; t < n; t++) {
        pthread_join(tid[t], NULL);
    }
    for (unsigned t = 0; t < n; t++) {
        if (jobs[t].status != RAWNR_OK) {
            return jobs[t].status;
        }
    }
    return RAWNR_OK;
}

int main(int argc, char **argv) {
    rawnr_config cfg;
    rawnr_model *model = NULL;
    rawnr_denoiser *den = NULL;
    rawnr_model_info mi;
    rawnr_denoiser_info di;
    rawnr_status s;
    pgm_header h;
    void *model_bytes = NULL, *den_storage = NULL, *scratch = NULL;
    uint16_t *in = NULL, *out = NULL;
    size_t model_len = 0, den_size = 0, scratch_size = 0, stride, frame_bytes;
    int white_set = 0, load = 0, detail = 0, rc = 1;
    unsigned pad = 0, threads = 1, runs = 1;
    part_job jobs[64];
    void *scratches[64] = {0};
    double best = 0.0;
    FILE *fi = NULL, *fo = NULL;

    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.rnm IN.pgm OUT.pgm [options]\n", argv[0]);
        return 2;
    }
    rawnr_config_default(&cfg);
    for (int i = 4; i < argc; i++) {
        int r = args_config(argc, argv, &i, &cfg, &white_set);
        if (r < 0) {
            return 2;
        }
        if (r > 0) {
            continue;
        }
        if (!strcmp(argv[i], "--load")) {
            load = 1;
        } else if (!strcmp(argv[i], "--detail")) {
            detail = 1;
        } else if (!strcmp(argv[i], "--pad") && i + 1 < argc) {
            pad = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
            if (threads < 1 || threads > 64) {
                fprintf(stderr, "--threads: 1 to 64\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = (unsigned)strtoul(argv[++i], NULL, 10);
            if (runs < 1) {
                runs = 1;
            }
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if ((rawnr_version_number() >> 16) != RAWNR_VERSION_MAJOR) {
        fprintf(stderr, "rawnr.h does not match the library (%s)\n", rawnr_version());
        return 1;
    }

    /* 1. The model: mapped by path, or loaded from our own aligned buffer. */
    if (load) {
        model_bytes = read_file_aligned(argv[1], &model_len);
        if (!model_bytes) {
            fprintf(stderr, "%s: cannot read\n", argv[1]);
            goto done;
        }
        s = rawnr_model_load(model_bytes, model_len, &model);
    } else {
        s = rawnr_model_open(argv[1], &model);
    }
    if (s != RAWNR_OK) {
        rc = args_fail(argv[1], s);
        goto done;
    }
    rawnr_model_get_info(model, &mi);

    /* 2. The frame. */
    fi = fopen(argv[2], "rb");
    if (!fi || pgm_read_header(fi, &h)) {
        fprintf(stderr, "%s: not a binary PGM\n", argv[2]);
        goto done;
    }
    stride = (size_t)h.width + pad;
    frame_bytes = ((size_t)h.height - 1) * stride * 2 + (size_t)h.width * 2;
    in = malloc(frame_bytes);
    out = malloc(frame_bytes);
    if (!in || !out || pgm_read_rows(fi, &h, in, stride, h.height)) {
        fprintf(stderr, "%s: truncated or out of memory\n", argv[2]);
        goto done;
    }
    cfg.width = h.width;
    cfg.height = h.height;
    cfg.detail_restore = (uint32_t)detail;
    if (!white_set) {
        cfg.white = (float)h.maxval;
    }

    /* 3. The denoiser (plan) and the scratch, both caller memory sized by queries. */
    if ((s = rawnr_denoiser_storage_size(model, &den_size)) != RAWNR_OK) {
        rc = args_fail("rawnr_denoiser_storage_size", s);
        goto done;
    }
    den_storage = malloc(den_size);
    if (!den_storage) {
        goto done;
    }
    if ((s = rawnr_denoiser_init(model, &cfg, den_storage, den_size, &den)) != RAWNR_OK) {
        rc = args_fail("rawnr_denoiser_init", s);
        goto done;
    }
    rawnr_denoiser_scratch_size(den, &scratch_size);
    rawnr_denoiser_get_info(den, &di);
    scratch = malloc(scratch_size);
    if (!scratch) {
        fprintf(stderr, "cannot allocate %zu bytes of scratch\n", scratch_size);
        goto done;
    }
    fprintf(stderr,
            "rawnr %s, model \"%s\" (input: %s, %s noise, noise band %u of %u): %ux%u frame, "
            "tile %u halo %u (%ux%u tiles), plan %zu bytes, scratch %zu bytes\n",
            rawnr_version(), mi.name, mi.clip_below_black ? "clipped below black" : "not clipped",
            mi.noise_channels == 1 ? "pooled" : "per-plane", (unsigned)di.noise_band,
            (unsigned)mi.noise_bands, (unsigned)h.width,
            (unsigned)h.height, (unsigned)di.tile, (unsigned)di.halo, (unsigned)di.tile_cols,
            (unsigned)di.tile_rows, den_size, scratch_size);

    /* 4. Denoise. Strides are in bytes. One thread: the whole-frame call; more: one part of
     * the frame per thread, each with its own scratch, all into the same output. */
    for (unsigned t = 0; t < threads; t++) {
        scratches[t] = t == 0 ? scratch : malloc(scratch_size);
        if (!scratches[t]) {
            goto done;
        }
        jobs[t] = (part_job){den, t, threads, in, out, frame_bytes, stride * 2, scratch_size,
                             scratches[t], RAWNR_OK};
    }
    for (unsigned r = 0; r < runs; r++) {
        double t0 = now_s(), dt;
        if (threads == 1) {
            s = rawnr_denoise_frame(den, in, frame_bytes, stride * 2, out, frame_bytes,
                                    stride * 2, scratch, scratch_size);
        } else {
            s = denoise_once(jobs, threads);
        }
        dt = now_s() - t0;
        if (s != RAWNR_OK) {
            rc = args_fail(threads == 1 ? "rawnr_denoise_frame" : "rawnr_denoise_frame_part", s);
            goto done;
        }
        best = r == 0 || dt < best ? dt : best;
    }
    fprintf(stderr, "denoised in %.3f s (fastest of %u, %u thread%s)\n", best, runs, threads,
            threads == 1 ? "" : "s");

    /* 5. Write the result. */
    fo = fopen(argv[3], "wb");
    if (!fo || pgm_write_header(fo, h.width, h.height, 65535) ||
        pgm_write_rows(fo, out, stride, h.width, h.height) || fflush(fo)) {
        fprintf(stderr, "%s: cannot write\n", argv[3]);
        goto done;
    }
    rc = 0;

done:
    if (fi) {
        fclose(fi);
    }
    if (fo && fclose(fo) != 0) {
        rc = 1;
    }
    rawnr_denoiser_free(den); /* caller storage: only invalidates the handle */
    rawnr_model_free(model);  /* unmaps the file / frees the handle */
    for (unsigned t = 1; t < threads; t++) {
        free(scratches[t]);
    }
    free(scratch);
    free(den_storage);
    free(in);
    free(out);
    free(model_bytes);
    return rc;
}
