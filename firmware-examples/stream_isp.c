/*
 * stream_isp: an ISP line-buffer loop on rawnr's row-streamed engine (rawnr_stream_*), with a
 * fixed memory budget and the caller's own threads.
 *
 *   stream_isp MODEL.rnm IN.pgm OUT.pgm [--cfa grbg] [--black 25] [--white 1023]
 *              [--iso 3200 | --noise K,S] [--halo N] [--rows N] [--jitter] [--frames N]
 *              [--threads N] [--stripe-width N] [--step N] [--min-rows N]
 *
 * The "sensor" is IN.pgm, read --rows N rows at a time (default 16; a varying 1..N with
 * --jitter) into the line buffer. Every push goes to N streams (--threads N, default 1), one
 * per part of the frame's stripes, each on its own thread (POSIX threads, started once; a
 * barrier per push); each writes its columns of the finished rows into one output buffer,
 * which goes straight to OUT.pgm. Nothing is computed twice: a row comes back after the
 * network's vertical reach (latency_rows), bit-identical to the frame row-streamed with the
 * same stripes (by default one per thread; with one thread, one pass over the whole frame).
 * --frames N streams the frame N times through the same streams (OUT.pgm holds the last);
 * the time printed per frame is the pushes' wall time (file reads and writes excluded).
 *
 * Memory: the streams live in one static buffer (RAWNR_STREAM_BUDGET), checked against
 * rawnr_stream_storage_size before anything runs; the stream's schedule tables (a few KiB)
 * are allocated once by rawnr_stream_init.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "example_args.h"
#include "pgm_io.h"
#include "rawnr.h"

/* The memory budget. Size these for your sensor and model. */
#ifndef RAWNR_MAX_WIDTH
#define RAWNR_MAX_WIDTH 4096 /* widest frame, pixels */
#endif
#ifndef RAWNR_ROWS_PER_PUSH
#define RAWNR_ROWS_PER_PUSH 64 /* line buffer height: rows the ISP delivers at a time */
#endif
#ifndef RAWNR_OUT_ROWS
/* Rows one push may return (rawnr_stream_max_output_rows): a schedule step's rows in the
 * frame, but the frame's last push returns the rows still within the network's reach
 * (latency_rows: PMRID about 1000, its int8 model about 1200). */
#define RAWNR_OUT_ROWS 1536
#endif
#ifndef RAWNR_MODEL_BUDGET
#define RAWNR_MODEL_BUDGET (8u << 20) /* .rnm bytes (PMRID: 4.0 MiB) */
#endif
#ifndef RAWNR_DENOISER_BUDGET
#define RAWNR_DENOISER_BUDGET (64u << 10) /* plan tables (rawnr_denoiser_storage_size) */
#endif
#ifndef RAWNR_STREAM_BUDGET
#define RAWNR_STREAM_BUDGET (512u << 20) /* all streams (rawnr_stream_storage_size) */
#endif
#define MAX_THREADS 16

static uint32_t model_words[RAWNR_MODEL_BUDGET / 4]; /* uint32_t: 4-byte aligned */
static unsigned char model_storage[RAWNR_MODEL_STORAGE_SIZE];
static unsigned char denoiser_storage[RAWNR_DENOISER_BUDGET];
static unsigned char stream_storage[RAWNR_STREAM_BUDGET];
static uint16_t line_buffer[RAWNR_ROWS_PER_PUSH * RAWNR_MAX_WIDTH];
static uint16_t out_buffer[RAWNR_OUT_ROWS * RAWNR_MAX_WIDTH];

/* One part's thread: pushes the line buffer's rows into its stream, once per barrier. */
typedef struct {
    rawnr_stream *stream;
    pthread_barrier_t *start, *done;
    const size_t *n;   /* rows in the line buffer this push (0: stop) */
    size_t first, got; /* what the last push returned */
    rawnr_status status;
} part;

static void push_part(part *p) {
    p->status = rawnr_stream_push(p->stream, line_buffer, *p->n, sizeof line_buffer,
                                  RAWNR_MAX_WIDTH * 2, out_buffer, sizeof out_buffer,
                                  RAWNR_MAX_WIDTH * 2, &p->first, &p->got);
}

static void *part_thread(void *arg) {
    part *p = arg;
    for (;;) {
        pthread_barrier_wait(p->start);
        if (*p->n == 0) {
            return NULL;
        }
        push_part(p);
        pthread_barrier_wait(p->done);
    }
}

static int too_big(const char *what, size_t need, size_t budget, const char *knob) {
    fprintf(stderr, "%s needs %zu bytes, the budget is %zu: raise %s\n", what, need, budget,
            knob);
    return 1;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    rawnr_config cfg;
    rawnr_stream_config scfg;
    rawnr_model *model = NULL;
    rawnr_denoiser *den = NULL;
    rawnr_stream_info info;
    rawnr_status s;
    pgm_header h;
    part parts[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    pthread_barrier_t start, done_b;
    size_t model_len, need, used = 0, max_out = 0, n_rows = 0;
    long data_start;
    unsigned rows_per_push = 16, frames = 1, threads = 1, started = 0;
    int white_set = 0, jitter = 0, rc = 1, barriers = 0;
    FILE *fm = NULL, *fi = NULL, *fo = NULL;

    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.rnm IN.pgm OUT.pgm [options]\n", argv[0]);
        return 2;
    }
    rawnr_config_default(&cfg);
    rawnr_stream_config_default(&scfg);
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
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--stripe-width") && i + 1 < argc) {
            scfg.stripe_width = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--step") && i + 1 < argc) {
            scfg.step = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--min-rows") && i + 1 < argc) {
            scfg.min_rows = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--jitter")) {
            jitter = 1;
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (rows_per_push == 0 || rows_per_push > RAWNR_ROWS_PER_PUSH || frames == 0 ||
        threads == 0 || threads > MAX_THREADS) {
        fprintf(stderr, "--rows must be 1..%d, --frames at least 1, --threads 1..%d\n",
                RAWNR_ROWS_PER_PUSH, MAX_THREADS);
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

    /* 3. Denoiser and one stream per thread in the static budget; size queries first. */
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
    memset(parts, 0, sizeof parts);
    scfg.n_parts = threads;
    for (unsigned t = 0; t < threads; t++) {
        scfg.part = t;
        if ((s = rawnr_stream_storage_size(den, &scfg, &need)) != RAWNR_OK) {
            rc = args_fail("rawnr_stream_storage_size (--threads at most the stripes)", s);
            goto done;
        }
        if (need > sizeof stream_storage - used) {
            rc = too_big("the streams", used + need, sizeof stream_storage,
                         "RAWNR_STREAM_BUDGET");
            goto done;
        }
        s = rawnr_stream_init(den, &scfg, stream_storage + used, need, &parts[t].stream);
        if (s != RAWNR_OK) {
            rc = args_fail("rawnr_stream_init", s);
            goto done;
        }
        used += need;
        rawnr_stream_max_output_rows(parts[t].stream, rows_per_push, &max_out);
        if (max_out > RAWNR_OUT_ROWS) {
            fprintf(stderr, "a push may return %zu rows, RAWNR_OUT_ROWS is %d\n", max_out,
                    RAWNR_OUT_ROWS);
            goto done;
        }
        rawnr_stream_get_info(parts[t].stream, &info);
        fprintf(stderr,
                "stream %u/%u: %ux%u, %u of %u stripes, columns %u..%u, latency %u rows, "
                "window %u rows, storage %zu bytes, up to %zu rows per push of %u\n",
                t, threads, (unsigned)info.width, (unsigned)info.height,
                (unsigned)info.part_stripes, (unsigned)info.stripes,
                (unsigned)info.first_column, (unsigned)info.end_column,
                (unsigned)info.latency_rows, (unsigned)info.window_rows, need, max_out,
                rows_per_push);
    }
    fprintf(stderr, "streams: %zu bytes in all\n", used);

    /* 4. The part threads (part 0 runs on this thread). */
    if (pthread_barrier_init(&start, NULL, threads) || pthread_barrier_init(&done_b, NULL, threads)) {
        fprintf(stderr, "pthread_barrier_init failed\n");
        goto done;
    }
    barriers = 1;
    for (unsigned t = 0; t < threads; t++) {
        parts[t].start = &start;
        parts[t].done = &done_b;
        parts[t].n = &n_rows;
    }
    for (unsigned t = 1; t < threads; t++) {
        if (pthread_create(&tids[t], NULL, part_thread, &parts[t])) {
            /* The threads started wait at a barrier that can no longer fill: end here. */
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
        started++;
    }

    /* 5. The ISP loop. */
    fo = fopen(argv[3], "wb");
    if (!fo) {
        fprintf(stderr, "%s: cannot write\n", argv[3]);
        goto done;
    }
    for (unsigned frame = 0; frame < frames; frame++) {
        size_t pushed = 0, emitted = 0;
        unsigned k = 0;
        double busy = 0.0;
        if (fseek(fi, data_start, SEEK_SET) || fseek(fo, 0, SEEK_SET) ||
            pgm_write_header(fo, h.width, h.height, 65535)) {
            goto done;
        }
        while (pushed < h.height) {
            size_t n = jitter ? 1 + (k++ * 7u) % rows_per_push : rows_per_push;
            double t0;
            if (n > h.height - pushed) {
                n = h.height - pushed;
            }
            /* The sensor delivers n rows into the line buffer. */
            if (pgm_read_rows(fi, &h, line_buffer, RAWNR_MAX_WIDTH, n)) {
                fprintf(stderr, "%s: truncated\n", argv[2]);
                goto done;
            }
            t0 = now();
            n_rows = n;
            if (threads > 1) {
                pthread_barrier_wait(&start);
            }
            push_part(&parts[0]);
            if (threads > 1) {
                pthread_barrier_wait(&done_b);
            }
            busy += now() - t0;
            for (unsigned t = 0; t < threads; t++) {
                if (parts[t].status != RAWNR_OK) {
                    rc = args_fail("rawnr_stream_push", parts[t].status);
                    goto done;
                }
                /* Every part finishes the same rows. */
                if (parts[t].first != parts[0].first || parts[t].got != parts[0].got) {
                    fprintf(stderr, "parts disagree on the finished rows\n");
                    goto done;
                }
            }
            pushed += n;
            if (parts[0].got > 0) {
                size_t first = parts[0].first, got = parts[0].got;
                /* Rows come back in order, each exactly once, within the latency. */
                if (first != emitted) {
                    fprintf(stderr, "rows out of order: %zu, expected %zu\n", first, emitted);
                    goto done;
                }
                if (pgm_write_rows(fo, out_buffer, RAWNR_MAX_WIDTH, h.width, got)) {
                    goto done;
                }
                emitted += got;
            }
            if (pushed < h.height && emitted + info.latency_rows < pushed + 1) {
                fprintf(stderr, "row %zu late: %zu rows pushed\n", emitted, pushed);
                goto done;
            }
        }
        if (emitted != h.height) {
            fprintf(stderr, "frame %u: %zu of %u rows returned\n", frame, emitted,
                    (unsigned)h.height);
            goto done;
        }
        fprintf(stderr, "frame %u: %u rows, %u thread(s), pushes %.3f s\n", frame,
                (unsigned)h.height, threads, busy);
    }
    rc = fflush(fo) ? 1 : 0;

done:
    if (started > 0) {
        /* Stop the part threads: a barrier with no rows. */
        n_rows = 0;
        pthread_barrier_wait(&start);
        for (unsigned t = 1; t <= started; t++) {
            pthread_join(tids[t], NULL);
        }
    }
    if (barriers) {
        pthread_barrier_destroy(&start);
        pthread_barrier_destroy(&done_b);
    }
    if (fi) {
        fclose(fi);
    }
    if (fo && fclose(fo) != 0) {
        rc = 1;
    }
    for (unsigned t = 0; t < threads && t < MAX_THREADS; t++) {
        rawnr_stream_free(parts[t].stream); /* frees the schedule tables */
    }
    rawnr_denoiser_free(den);
    rawnr_model_free(model);
    return rc;
}
