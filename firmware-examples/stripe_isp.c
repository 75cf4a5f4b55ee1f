/*
 * stripe_isp: the loop of an ISP line-buffer pipeline running rawnr on a fixed, static memory
 * budget. No malloc: every buffer is a static array sized by the compile-time constants below,
 * and the program checks at run time that rawnr's size queries fit them.
 *
 *   stripe_isp MODEL.rnm IN.pgm OUT.pgm [--cfa grbg] [--black 25] [--white 1023]
 *              [--iso 3200 | --noise K,S] [--tile 64] [--halo N] [--rows N] [--jitter]
 *              [--frames N]
 *
 * The "sensor" is IN.pgm, read RAWNR_ROWS_PER_PUSH rows at a time (or --rows N, or a varying
 * 1..N with --jitter) into the line buffer and pushed into a rawnr stripe; the rows that come
 * back are final and go straight to OUT.pgm. --frames N streams the frame N times through the
 * same stripe (as a video pipeline does); OUT.pgm holds the last one. The output is
 * bit-identical to rawnr_denoise_frame (denoise_file.c) with the same tile options.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_args.h"
#include "pgm_io.h"
#include "rawnr.h"

/* The memory budget. Size these for your sensor, tile and model. */
#ifndef RAWNR_MAX_WIDTH
#define RAWNR_MAX_WIDTH 4096 /* widest frame, pixels */
#endif
#ifndef RAWNR_ROWS_PER_PUSH
#define RAWNR_ROWS_PER_PUSH 16 /* line buffer height: rows the ISP delivers at a time */
#endif
#ifndef RAWNR_OUT_ROWS
#define RAWNR_OUT_ROWS 1024 /* rows one push may return (rawnr_stripe_max_output_rows) */
#endif
#ifndef RAWNR_MODEL_BUDGET
#define RAWNR_MODEL_BUDGET (8u << 20) /* .rnm bytes (PMRID: 4.0 MiB) */
#endif
#ifndef RAWNR_DENOISER_BUDGET
#define RAWNR_DENOISER_BUDGET (64u << 10) /* plan tables (rawnr_denoiser_storage_size) */
#endif
#ifndef RAWNR_STRIPE_BUDGET
#define RAWNR_STRIPE_BUDGET (64u << 20) /* window + arena (rawnr_stripe_storage_size) */
#endif

static uint32_t model_words[RAWNR_MODEL_BUDGET / 4]; /* uint32_t: 4-byte aligned */
static unsigned char model_storage[RAWNR_MODEL_STORAGE_SIZE];
static unsigned char denoiser_storage[RAWNR_DENOISER_BUDGET];
static unsigned char stripe_storage[RAWNR_STRIPE_BUDGET];
static uint16_t line_buffer[RAWNR_ROWS_PER_PUSH * RAWNR_MAX_WIDTH];
static uint16_t out_buffer[RAWNR_OUT_ROWS * RAWNR_MAX_WIDTH];

static int too_big(const char *what, size_t need, size_t budget, const char *knob) {
    fprintf(stderr, "%s needs %zu bytes, the budget is %zu: raise %s\n", what, need, budget,
            knob);
    return 1;
}

int main(int argc, char **argv) {
    rawnr_config cfg;
    rawnr_model *model = NULL;
    rawnr_denoiser *den = NULL;
    rawnr_stripe *stripe = NULL;
    rawnr_stripe_info info;
    rawnr_status s;
    pgm_header h;
    size_t model_len, need, max_out = 0;
    long data_start;
    unsigned rows_per_push = RAWNR_ROWS_PER_PUSH, frames = 1;
    int white_set = 0, jitter = 0, rc = 1;
    FILE *fm = NULL, *fi = NULL, *fo = NULL;

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
        if (!strcmp(argv[i], "--rows") && i + 1 < argc) {
            rows_per_push = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--frames") && i + 1 < argc) {
            frames = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--jitter")) {
            jitter = 1;
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (rows_per_push == 0 || rows_per_push > RAWNR_ROWS_PER_PUSH || frames == 0) {
        fprintf(stderr, "--rows must be 1..%d, --frames at least 1\n", RAWNR_ROWS_PER_PUSH);
        return 2;
    }

    /* 1. The model, read into the static, aligned model buffer and used in place. */
    fm = fopen(argv[1], "rb");
    if (!fm) {
        fprintf(stderr, "%s: cannot open\n", argv[1]);
        return 1;
    }
    model_len = fread(model_words, 1, sizeof model_words, fm);
    if (!feof(fm)) {
        fclose(fm);
        return too_big("the model", model_len + 1, sizeof model_words, "RAWNR_MODEL_BUDGET");
    }
    fclose(fm);
    s = rawnr_model_init(model_storage, sizeof model_storage, model_words, model_len, &model);
    if (s != RAWNR_OK) {
        return args_fail(argv[1], s);
    }

    /* 2. The sensor's geometry. */
    fi = fopen(argv[2], "rb");
    if (!fi || pgm_read_header(fi, &h) || (data_start = ftell(fi)) < 0) {
        fprintf(stderr, "%s: not a binary PGM\n", argv[2]);
        goto done;
    }
    if (h.width > RAWNR_MAX_WIDTH) {
        fprintf(stderr, "width %u exceeds RAWNR_MAX_WIDTH %d\n", (unsigned)h.width,
                RAWNR_MAX_WIDTH);
        goto done;
    }
    cfg.width = h.width;
    cfg.height = h.height;
    if (!white_set) {
        cfg.white = (float)h.maxval;
    }

    /* 3. Denoiser and stripe in the static budget; check every size query first. */
    if ((s = rawnr_denoiser_storage_size(model, &need)) != RAWNR_OK) {
        rc = args_fail("rawnr_denoiser_storage_size", s);
        goto done;
    }
    if (need > sizeof denoiser_storage) {
        rc = too_big("the denoiser", need, sizeof denoiser_storage, "RAWNR_DENOISER_BUDGET");
        goto done;
    }
    s = rawnr_denoiser_init(model, &cfg, denoiser_storage, sizeof denoiser_storage, &den);
    if (s != RAWNR_OK) {
        rc = args_fail("rawnr_denoiser_init", s);
        goto done;
    }
    if ((s = rawnr_stripe_storage_size(den, &need)) != RAWNR_OK) {
        rc = args_fail("rawnr_stripe_storage_size", s);
        goto done;
    }
    if (need > sizeof stripe_storage) {
        rc = too_big("the stripe", need, sizeof stripe_storage, "RAWNR_STRIPE_BUDGET");
        goto done;
    }
    s = rawnr_stripe_init(den, stripe_storage, sizeof stripe_storage, &stripe);
    if (s != RAWNR_OK) {
        rc = args_fail("rawnr_stripe_init", s);
        goto done;
    }
    rawnr_stripe_max_output_rows(stripe, rows_per_push, &max_out);
    if (max_out > RAWNR_OUT_ROWS) {
        fprintf(stderr, "a push may return %zu rows, RAWNR_OUT_ROWS is %d\n", max_out,
                RAWNR_OUT_ROWS);
        goto done;
    }
    rawnr_stripe_get_info(stripe, &info);
    fprintf(stderr,
            "stripe: %ux%u, %u bands of %u rows, latency %u rows, window %u rows, "
            "storage %zu bytes, up to %zu rows per push of %u\n",
            (unsigned)info.width, (unsigned)info.height, (unsigned)info.bands,
            (unsigned)info.band_rows, (unsigned)info.latency_rows, (unsigned)info.window_rows,
            need, max_out, rows_per_push);

    /* 4. The ISP loop. */
    fo = fopen(argv[3], "wb");
    if (!fo) {
        fprintf(stderr, "%s: cannot write\n", argv[3]);
        goto done;
    }
    for (unsigned frame = 0; frame < frames; frame++) {
        size_t pushed = 0, emitted = 0, worst = 0;
        unsigned k = 0;
        if (fseek(fi, data_start, SEEK_SET) || fseek(fo, 0, SEEK_SET) ||
            pgm_write_header(fo, h.width, h.height, 65535)) {
            goto done;
        }
        while (pushed < h.height) {
            size_t n = jitter ? 1 + (k++ * 7u) % rows_per_push : rows_per_push;
            size_t first = 0, got = 0;
            if (n > h.height - pushed) {
                n = h.height - pushed;
            }
            /* The sensor delivers n rows into the line buffer. */
            if (pgm_read_rows(fi, &h, line_buffer, RAWNR_MAX_WIDTH, n)) {
                fprintf(stderr, "%s: truncated\n", argv[2]);
                goto done;
            }
            s = rawnr_stripe_push(stripe, line_buffer, n, sizeof line_buffer,
                                  RAWNR_MAX_WIDTH * 2, out_buffer, sizeof out_buffer,
                                  RAWNR_MAX_WIDTH * 2, &first, &got);
            if (s != RAWNR_OK) {
                rc = args_fail("rawnr_stripe_push", s);
                goto done;
            }
            pushed += n;
            if (got > 0) {
                /* Rows come back in order, each exactly once. */
                if (first != emitted) {
                    fprintf(stderr, "rows out of order: %zu, expected %zu\n", first, emitted);
                    goto done;
                }
                if (pgm_write_rows(fo, out_buffer, RAWNR_MAX_WIDTH, h.width, got)) {
                    goto done;
                }
                /* Latency: rows pushed since the first returned row, itself included. It
                 * is bounded by latency_rows, plus the rows of this push beyond the one that
                 * completed the band. */
                if (pushed - first > worst) {
                    worst = pushed - first;
                }
                if (pushed < h.height && pushed - first > info.latency_rows + n - 1) {
                    fprintf(stderr, "row %zu came %zu rows late\n", first, pushed - first);
                    goto done;
                }
                emitted += got;
            }
        }
        if (emitted != h.height) {
            fprintf(stderr, "frame %u: %zu of %u rows returned\n", frame, emitted,
                    (unsigned)h.height);
            goto done;
        }
        fprintf(stderr, "frame %u: %u rows, worst latency %zu rows\n", frame,
                (unsigned)h.height, worst);
    }
    rc = fflush(fo) ? 1 : 0;

done:
    if (fi) {
        fclose(fi);
    }
    if (fo && fclose(fo) != 0) {
        rc = 1;
    }
    /* Handles in caller storage: freeing only invalidates them; nothing was allocated. */
    rawnr_stripe_free(stripe);
    rawnr_denoiser_free(den);
    rawnr_model_free(model);
    return rc;
}
