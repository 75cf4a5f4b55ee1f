/*
 * test_errors: calls every rawnr entry point with every kind of bad argument and checks the
 * status code (and that nothing was written), then checks the stripe API against the
 * whole-frame call on a small synthetic frame.
 *
 *   test_errors MODEL.rnm
 *
 * Any valid model with a size multiple dividing 32 works (the Rust tests run it with PMRID
 * and, under valgrind, with a tiny model to keep the run short).
 *
 * Exits 0 when every check passes. Not reachable from a correct std build and so not
 * exercised here: RAWNR_ERR_PANIC (tested in Rust by forcing a panic through the boundary
 * guard) and RAWNR_ERR_UNSUPPORTED (the no_std build's answer to the allocating calls).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rawnr.h"

static int checks, failures;

static void expect(rawnr_status got, rawnr_status want, const char *expr, int line) {
    checks++;
    if (got != want) {
        failures++;
        fprintf(stderr, "test_errors.c:%d: %s\n    returned %d (%s), expected %d (%s)\n", line,
                expr, (int)got, rawnr_status_string((int32_t)got), (int)want,
                rawnr_status_string((int32_t)want));
    }
}

static void check(int ok, const char *what, int line) {
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr, "test_errors.c:%d: check failed: %s\n", line, what);
    }
}

#define EXPECT(call, want) expect((call), (want), #call, __LINE__)
#define CHECK(cond) check((cond) ? 1 : 0, #cond, __LINE__)

/* A small GRBG frame: 62 x 128, black 25, white 1023 (packed 31 x 64: one tile column for
 * models with a size multiple up to 32); tile 32 (64 raw rows) and halo 0 give 2 bands, each
 * reading only its own rows, so the stripe's window slides. */
enum { W = 62, H = 128, PAD = 3, STRIDE = W + PAD };

static uint16_t frame_in[H * STRIDE];
static uint16_t frame_out[H * STRIDE];
static uint16_t frame_ref[H * STRIDE];
static uint16_t stripe_out[H * STRIDE];
static uint64_t zeros[64]; /* a "handle" that was never initialised */

static void fill_frame(void) {
    uint32_t x = 12345;
    for (int i = 0; i < H * STRIDE; i++) {
        x = x * 1103515245u + 12345u;
        frame_in[i] = (uint16_t)(25 + (x >> 16) % 999);
    }
}

static int all_equal(const uint16_t *p, size_t n, uint16_t v) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != v) {
            return 0;
        }
    }
    return 1;
}

static void *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    long n;
    if (!f) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 8);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

/* A temporary file holding `len` bytes of `data`; its path goes to `path`. */
static int temp_file(const void *data, size_t len, char *path, size_t path_len) {
    const char *dir = getenv("TMPDIR");
    int fd;
    snprintf(path, path_len, "%s/rawnr_test_XXXXXX", dir && *dir ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0) {
        return -1;
    }
    if (len > 0 && write(fd, data, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    return close(fd);
}

static void test_version(void) {
    char want[32];
    const char *v = rawnr_version();
    snprintf(want, sizeof want, "%d.%d.%d", RAWNR_VERSION_MAJOR, RAWNR_VERSION_MINOR,
             RAWNR_VERSION_PATCH);
    CHECK(v != NULL && strcmp(v, want) == 0);
    CHECK(rawnr_version_number() == (uint32_t)((RAWNR_VERSION_MAJOR << 16) |
                                               (RAWNR_VERSION_MINOR << 8) | RAWNR_VERSION_PATCH));
    for (int s = RAWNR_OK; s <= RAWNR_ERR_PANIC; s++) {
        CHECK(strcmp(rawnr_status_string(s), "unknown status") != 0);
    }
    CHECK(strcmp(rawnr_status_string(-1), "unknown status") == 0);
    CHECK(strcmp(rawnr_status_string(1000), "unknown status") == 0);
    EXPECT(rawnr_config_default(NULL), RAWNR_ERR_NULL);
}

/* Model loading; returns a valid handle in `storage` for the later tests. */
static rawnr_model *test_models(const char *path, unsigned char *bytes, size_t len,
                                unsigned char *storage) {
    rawnr_model *m = (rawnr_model *)zeros, *ok = NULL;
    rawnr_model_info info;
    unsigned char small[8];
    unsigned char *copy = malloc(len + 8);
    char tmp[512];

    /* NULLs, and *out is cleared on failure. */
    EXPECT(rawnr_model_init(NULL, RAWNR_MODEL_STORAGE_SIZE, bytes, len, &m), RAWNR_ERR_NULL);
    CHECK(m == NULL);
    EXPECT(rawnr_model_init(storage, RAWNR_MODEL_STORAGE_SIZE, NULL, len, &m), RAWNR_ERR_NULL);
    EXPECT(rawnr_model_init(storage, RAWNR_MODEL_STORAGE_SIZE, bytes, len, NULL),
           RAWNR_ERR_NULL);
    /* Misaligned model bytes. */
    memcpy(copy + 1, bytes, len);
    EXPECT(rawnr_model_init(storage, RAWNR_MODEL_STORAGE_SIZE, copy + 1, len, &m),
           RAWNR_ERR_MISALIGNED);
    /* Empty, truncated, too long, garbage, corrupt. */
    EXPECT(rawnr_model_init(storage, RAWNR_MODEL_STORAGE_SIZE - 1, bytes, len, &m),
           RAWNR_ERR_BUFFER_TOO_SMALL);
    EXPECT(rawnr_model_init(storage, RAWNR_MODEL_STORAGE_SIZE, bytes, 0, &m), RAWNR_ERR_BAD_MODEL);
    EXPECT(rawnr_model_init(storage, RAWNR_MODEL_STORAGE_SIZE, bytes, len - 1, &m),
           RAWNR_ERR_BAD_MODEL);
    EXPECT(rawnr_model_init(storage, RAWNR_MODEL_STORAGE_SIZE, bytes, 63, &m),
           RAWNR_ERR_BAD_MODEL);
    memcpy(copy, bytes, len);
    memset(copy + len, 0, 8);
    EXPECT(rawnr_model_init(storage, RAWNR_MODEL_STORAGE_SIZE, copy, len + 4, &m),
           RAWNR_ERR_BAD_MODEL);
    memset(copy, 0, len);
    EXPECT(rawnr_model_init(storage, RAWNR_MODEL_STORAGE_SIZE, copy, len, &m),
           RAWNR_ERR_BAD_MODEL);
    memcpy(copy, bytes, len);
    copy[len / 2] ^= 0x10;
    EXPECT(rawnr_model_init(storage, RAWNR_MODEL_STORAGE_SIZE, copy, len, &m),
           RAWNR_ERR_BAD_MODEL);
    CHECK(m == NULL);
    /* Storage too small. */
    EXPECT(rawnr_model_init(small, sizeof small, bytes, len, &m), RAWNR_ERR_BUFFER_TOO_SMALL);
    /* Heap handles (std build): the same checks, then a good one. */
    EXPECT(rawnr_model_load(NULL, len, &m), RAWNR_ERR_NULL);
    EXPECT(rawnr_model_load(bytes, len, NULL), RAWNR_ERR_NULL);
    memcpy(copy + 1, bytes, len);
    EXPECT(rawnr_model_load(copy + 1, len, &m), RAWNR_ERR_MISALIGNED);
    EXPECT(rawnr_model_load(bytes, len - 1, &m), RAWNR_ERR_BAD_MODEL);
    EXPECT(rawnr_model_load(bytes, len, &m), RAWNR_OK);
    CHECK(m != NULL);
    rawnr_model_free(m);
    /* Files. */
    EXPECT(rawnr_model_open(NULL, &m), RAWNR_ERR_NULL);
    EXPECT(rawnr_model_open(path, NULL), RAWNR_ERR_NULL);
    EXPECT(rawnr_model_open("/nonexistent/dir/model.rnm", &m), RAWNR_ERR_IO);
    CHECK(m == NULL);
    if (temp_file(bytes, 0, tmp, sizeof tmp) == 0) {
        EXPECT(rawnr_model_open(tmp, &m), RAWNR_ERR_BAD_MODEL); /* empty */
        remove(tmp);
    } else {
        CHECK(!"temporary file");
    }
    if (temp_file(bytes, len / 3, tmp, sizeof tmp) == 0) {
        EXPECT(rawnr_model_open(tmp, &m), RAWNR_ERR_BAD_MODEL); /* truncated */
        remove(tmp);
    } else {
        CHECK(!"temporary file");
    }
    EXPECT(rawnr_model_open(path, &m), RAWNR_OK);
    EXPECT(rawnr_model_get_info(m, &info), RAWNR_OK);
    rawnr_model_free(m);
    rawnr_model_free(NULL);
    free(copy);

    /* The model the rest of the tests use, in caller storage. */
    EXPECT(rawnr_model_init(storage, RAWNR_MODEL_STORAGE_SIZE, bytes, len, &ok), RAWNR_OK);
    EXPECT(rawnr_model_get_info(NULL, &info), RAWNR_ERR_NULL);
    EXPECT(rawnr_model_get_info(ok, NULL), RAWNR_ERR_NULL);
    EXPECT(rawnr_model_get_info((const rawnr_model *)zeros, &info), RAWNR_ERR_BAD_HANDLE);
    EXPECT(rawnr_model_get_info(ok, &info), RAWNR_OK);
    CHECK(info.size_multiple >= 1 && info.n_values == info.n_nodes + 1);
    CHECK(info.noise_bands >= 1 && info.noise_bands <= 32);
    CHECK(info.precision <= RAWNR_PRECISION_INT8 && info.macs_per_megapixel > 0);
    CHECK(memchr(info.name, 0, sizeof info.name) != NULL && info.name[0] != 0);
    return ok;
}

static rawnr_config base_config(void) {
    rawnr_config c;
    rawnr_config_default(&c);
    c.width = W;
    c.height = H;
    c.cfa = RAWNR_CFA_GRBG;
    for (int k = 0; k < 4; k++) {
        c.black[k] = 25.0f;
    }
    c.white = 1023.0f;
    c.noise_k = 2e-3f; /* explicit noise: works with models without a default profile */
    c.noise_sigma2 = 1e-5f;
    c.tile = 32;
    c.halo = 0;
    return c;
}

static void expect_config(rawnr_model *m, rawnr_config c, rawnr_status want, int line) {
    static unsigned char storage[1 << 16];
    rawnr_denoiser *d = (rawnr_denoiser *)zeros;
    expect(rawnr_denoiser_init(m, &c, storage, sizeof storage, &d), want, "rawnr_denoiser_init",
           line);
    check(want != RAWNR_OK ? d == NULL : d != NULL, "*out on return", line);
}

static rawnr_denoiser *test_denoisers(rawnr_model *m, unsigned char *storage, size_t size) {
    rawnr_config c = base_config(), bad;
    rawnr_denoiser *d = NULL;
    size_t need = 0;

    EXPECT(rawnr_denoiser_storage_size(NULL, &need), RAWNR_ERR_NULL);
    EXPECT(rawnr_denoiser_storage_size(m, NULL), RAWNR_ERR_NULL);
    EXPECT(rawnr_denoiser_storage_size((const rawnr_model *)zeros, &need), RAWNR_ERR_BAD_HANDLE);
    EXPECT(rawnr_denoiser_storage_size(m, &need), RAWNR_OK);
    CHECK(need > 0 && need <= size);

    EXPECT(rawnr_denoiser_init(NULL, &c, storage, need, &d), RAWNR_ERR_NULL);
    EXPECT(rawnr_denoiser_init(m, NULL, storage, need, &d), RAWNR_ERR_NULL);
    EXPECT(rawnr_denoiser_init(m, &c, NULL, need, &d), RAWNR_ERR_NULL);
    EXPECT(rawnr_denoiser_init(m, &c, storage, need, NULL), RAWNR_ERR_NULL);
    EXPECT(rawnr_denoiser_init((const rawnr_model *)zeros, &c, storage, need, &d),
           RAWNR_ERR_BAD_HANDLE);
    EXPECT(rawnr_denoiser_init(m, &c, storage, need - 1, &d), RAWNR_ERR_BUFFER_TOO_SMALL);
    /* Bad frames. */
    bad = c, bad.width = 1;
    expect_config(m, bad, RAWNR_ERR_BAD_FRAME, __LINE__);
    bad = c, bad.height = 0;
    expect_config(m, bad, RAWNR_ERR_BAD_FRAME, __LINE__);
    bad = c, bad.width = 65536;
    expect_config(m, bad, RAWNR_ERR_BAD_FRAME, __LINE__);
    bad = c, bad.width = 30000, bad.height = 30000; /* 900 Mpixels */
    expect_config(m, bad, RAWNR_ERR_BAD_FRAME, __LINE__);
    bad = c, bad.width = UINT32_MAX, bad.height = UINT32_MAX;
    expect_config(m, bad, RAWNR_ERR_BAD_FRAME, __LINE__);
    bad = c, bad.cfa = 4;
    expect_config(m, bad, RAWNR_ERR_BAD_FRAME, __LINE__);
    bad = c, bad.white = 20.0f;
    expect_config(m, bad, RAWNR_ERR_BAD_FRAME, __LINE__);
    bad = c, bad.black[2] = 1023.0f;
    expect_config(m, bad, RAWNR_ERR_BAD_FRAME, __LINE__);
    bad = c, bad.black[0] = -1.0f;
    expect_config(m, bad, RAWNR_ERR_BAD_FRAME, __LINE__);
    bad = c, bad.white = 70000.0f;
    expect_config(m, bad, RAWNR_ERR_BAD_FRAME, __LINE__);
    bad = c, bad.white = NAN;
    expect_config(m, bad, RAWNR_ERR_BAD_FRAME, __LINE__);
    /* Bad noise; noise_k 0 selects the model's profile at `iso`. */
    bad = c, bad.noise_k = 0.0f, bad.iso = 0.0f;
    expect_config(m, bad, RAWNR_ERR_BAD_NOISE, __LINE__);
    bad = c, bad.noise_k = 0.0f, bad.iso = NAN;
    expect_config(m, bad, RAWNR_ERR_BAD_NOISE, __LINE__);
    {
        rawnr_model_info mi;
        rawnr_model_get_info(m, &mi);
        bad = c, bad.noise_k = 0.0f, bad.iso = 3200.0f;
        /* A model without a default profile (k(ISO) = 0) needs explicit noise. */
        expect_config(m, bad, mi.default_k[0] > 0.0f ? RAWNR_OK : RAWNR_ERR_BAD_NOISE, __LINE__);
    }
    bad = c, bad.noise_k = -1e-3f;
    expect_config(m, bad, RAWNR_ERR_BAD_NOISE, __LINE__);
    bad = c, bad.noise_k = 1e-3f, bad.noise_sigma2 = -1e-6f;
    expect_config(m, bad, RAWNR_ERR_BAD_NOISE, __LINE__);
    bad = c, bad.noise_k = INFINITY;
    expect_config(m, bad, RAWNR_ERR_BAD_NOISE, __LINE__);
    /* Good ones: explicit noise, whole-frame tile, other phases. */
    bad = c, bad.noise_k = 1e-3f, bad.noise_sigma2 = 1e-6f;
    expect_config(m, bad, RAWNR_OK, __LINE__);
    bad = c, bad.tile = 0, bad.halo = -1, bad.cfa = RAWNR_CFA_BGGR;
    expect_config(m, bad, RAWNR_OK, __LINE__);

    /* Heap denoiser (std build). */
    EXPECT(rawnr_denoiser_new(NULL, &c, &d), RAWNR_ERR_NULL);
    EXPECT(rawnr_denoiser_new(m, NULL, &d), RAWNR_ERR_NULL);
    EXPECT(rawnr_denoiser_new(m, &c, NULL), RAWNR_ERR_NULL);
    bad = c, bad.width = 0;
    EXPECT(rawnr_denoiser_new(m, &bad, &d), RAWNR_ERR_BAD_FRAME);
    EXPECT(rawnr_denoiser_new(m, &c, &d), RAWNR_OK);
    rawnr_denoiser_free(d);
    rawnr_denoiser_free(NULL);

    EXPECT(rawnr_denoiser_init(m, &c, storage, need, &d), RAWNR_OK);
    return d;
}

static void test_frames(rawnr_denoiser *d, const rawnr_model *m, unsigned char *den_storage) {
    rawnr_denoiser_info info;
    size_t scratch_size = 0;
    const size_t bytes = ((size_t)(H - 1) * STRIDE + W) * 2, stride = STRIDE * 2;
    unsigned char *scratch;

    EXPECT(rawnr_denoiser_scratch_size(NULL, &scratch_size), RAWNR_ERR_NULL);
    EXPECT(rawnr_denoiser_scratch_size(d, NULL), RAWNR_ERR_NULL);
    EXPECT(rawnr_denoiser_scratch_size((const rawnr_denoiser *)zeros, &scratch_size),
           RAWNR_ERR_BAD_HANDLE);
    /* A model handle is not a denoiser handle. */
    EXPECT(rawnr_denoiser_scratch_size((const rawnr_denoiser *)m, &scratch_size),
           RAWNR_ERR_BAD_HANDLE);
    EXPECT(rawnr_denoiser_scratch_size(d, &scratch_size), RAWNR_OK);
    EXPECT(rawnr_denoiser_get_info(NULL, &info), RAWNR_ERR_NULL);
    EXPECT(rawnr_denoiser_get_info(d, NULL), RAWNR_ERR_NULL);
    EXPECT(rawnr_denoiser_get_info(d, &info), RAWNR_OK);
    CHECK(info.width == W && info.height == H && info.tile_rows == 2 &&
          info.scratch_size == scratch_size && info.noise_band < 32);

    scratch = malloc(scratch_size + 1);
    fill_frame();
    for (int i = 0; i < H * STRIDE; i++) {
        frame_out[i] = 0xBEEF;
    }
#define FRAME(d_, in_, in_size, in_stride, out_, out_size, out_stride, s_, s_size)                \
    rawnr_denoise_frame((d_), (in_), (in_size), (in_stride), (out_), (out_size), (out_stride),  \
                        (s_), (s_size))
    EXPECT(FRAME(NULL, frame_in, bytes, stride, frame_out, bytes, stride, scratch, scratch_size),
           RAWNR_ERR_NULL);
    EXPECT(FRAME(d, NULL, bytes, stride, frame_out, bytes, stride, scratch, scratch_size),
           RAWNR_ERR_NULL);
    EXPECT(FRAME(d, frame_in, bytes, stride, NULL, bytes, stride, scratch, scratch_size),
           RAWNR_ERR_NULL);
    EXPECT(FRAME(d, frame_in, bytes, stride, frame_out, bytes, stride, NULL, scratch_size),
           RAWNR_ERR_NULL);
    EXPECT(FRAME((const rawnr_denoiser *)zeros, frame_in, bytes, stride, frame_out, bytes, stride,
                 scratch, scratch_size),
           RAWNR_ERR_BAD_HANDLE);
    /* Pixels must be 2-byte aligned. */
    EXPECT(FRAME(d, (const uint16_t *)((const char *)frame_in + 1), bytes - 2, stride, frame_out,
                 bytes, stride, scratch, scratch_size),
           RAWNR_ERR_MISALIGNED);
    EXPECT(FRAME(d, frame_in, bytes, stride, (uint16_t *)((char *)frame_out + 1), bytes - 2,
                 stride, scratch, scratch_size),
           RAWNR_ERR_MISALIGNED);
    /* Strides: odd, smaller than a row, zero. */
    EXPECT(FRAME(d, frame_in, bytes, stride + 1, frame_out, bytes, stride, scratch, scratch_size),
           RAWNR_ERR_BAD_STRIDE);
    EXPECT(FRAME(d, frame_in, bytes, stride, frame_out, bytes, 2 * W - 2, scratch, scratch_size),
           RAWNR_ERR_BAD_STRIDE);
    EXPECT(FRAME(d, frame_in, bytes, 0, frame_out, bytes, stride, scratch, scratch_size),
           RAWNR_ERR_BAD_STRIDE);
    /* Short buffers: input, output, scratch (one byte short each). */
    EXPECT(FRAME(d, frame_in, bytes - 1, stride, frame_out, bytes, stride, scratch, scratch_size),
           RAWNR_ERR_BUFFER_TOO_SMALL);
    EXPECT(FRAME(d, frame_in, bytes, stride, frame_out, bytes - 1, stride, scratch, scratch_size),
           RAWNR_ERR_BUFFER_TOO_SMALL);
    EXPECT(FRAME(d, frame_in, bytes, stride, frame_out, bytes, stride, scratch, scratch_size - 1),
           RAWNR_ERR_BUFFER_TOO_SMALL);
    /* A frame larger than the buffer the stride implies. */
    EXPECT(FRAME(d, frame_in, bytes, 2 * stride, frame_out, bytes, stride, scratch, scratch_size),
           RAWNR_ERR_BUFFER_TOO_SMALL);
    /* Overlaps: in place, scratch over a frame. */
    EXPECT(FRAME(d, frame_in, bytes, stride, frame_in, bytes, stride, scratch, scratch_size),
           RAWNR_ERR_OVERLAP);
    EXPECT(FRAME(d, frame_in, bytes, stride, frame_out, bytes, stride, frame_in, scratch_size),
           RAWNR_ERR_OVERLAP);
    /* The scratch must not overwrite the denoiser's own storage. */
    EXPECT(FRAME(d, frame_in, bytes, stride, frame_out, bytes, stride, den_storage + 8,
                 scratch_size),
           RAWNR_ERR_OVERLAP);
    CHECK(all_equal(frame_out, H * STRIDE, 0xBEEF)); /* nothing written on error */
    /* Any scratch alignment works. */
    EXPECT(FRAME(d, frame_in, bytes, stride, frame_out, bytes, stride, scratch + 1, scratch_size),
           RAWNR_OK);
    for (int y = 0; y < H; y++) {
        CHECK(all_equal(frame_out + y * STRIDE + W, PAD, 0xBEEF)); /* row padding untouched */
    }
    memcpy(frame_ref, frame_out, sizeof frame_ref);
    /* Same result with tight rows (stride == width) on both sides. */
    {
        uint16_t *tin = malloc((size_t)W * H * 2), *tout = malloc((size_t)W * H * 2);
        int same = 1;
        for (int y = 0; y < H; y++) {
            memcpy(tin + y * W, frame_in + y * STRIDE, W * 2);
        }
        EXPECT(FRAME(d, tin, (size_t)W * H * 2, W * 2, tout, (size_t)W * H * 2, W * 2, scratch,
                     scratch_size),
               RAWNR_OK);
        for (int y = 0; y < H; y++) {
            same &= !memcmp(tout + y * W, frame_ref + y * STRIDE, W * 2);
        }
        CHECK(same);
        free(tin);
        free(tout);
    }
    free(scratch);
}

/* Streams the frame through `s` in pushes of 1..n rows (varying when jitter), compares. */
static void stream(rawnr_stripe *s, size_t n, int jitter, int line) {
    size_t pushed = 0, emitted = 0, first, got;
    unsigned k = 0;
    int same = 1;
    memset(stripe_out, 0, sizeof stripe_out);
    while (pushed < H) {
        size_t m = jitter ? 1 + (k++ * 5u) % n : n;
        if (m > H - pushed) {
            m = H - pushed;
        }
        expect(rawnr_stripe_push(s, frame_in + pushed * STRIDE, m, m * STRIDE * 2, STRIDE * 2,
                                 stripe_out + emitted * STRIDE,
                                 (H - emitted) * STRIDE * 2, STRIDE * 2, &first, &got),
               RAWNR_OK, "rawnr_stripe_push", line);
        check(got == 0 || first == emitted, "rows in order", line);
        pushed += m;
        emitted += got;
    }
    check(emitted == H, "every row returned", line);
    for (int y = 0; y < H; y++) {
        same &= !memcmp(stripe_out + y * STRIDE, frame_ref + y * STRIDE, W * 2);
    }
    check(same, "stripe output == rawnr_denoise_frame output", line);
}

static void test_stripes(rawnr_denoiser *d, rawnr_model *m, unsigned char *den_storage,
                         size_t den_size) {
    rawnr_stripe *s = (rawnr_stripe *)zeros, *h = NULL;
    rawnr_stripe_info info;
    rawnr_config c = base_config();
    size_t need = 0, max_rows = 0, first = 0, got = 0;
    unsigned char *storage;
    const size_t rs = STRIDE * 2;
    uint16_t *out = stripe_out;
    const size_t out_size = sizeof stripe_out;

    EXPECT(rawnr_stripe_storage_size(NULL, &need), RAWNR_ERR_NULL);
    EXPECT(rawnr_stripe_storage_size(d, NULL), RAWNR_ERR_NULL);
    EXPECT(rawnr_stripe_storage_size((const rawnr_denoiser *)zeros, &need), RAWNR_ERR_BAD_HANDLE);
    EXPECT(rawnr_stripe_storage_size(d, &need), RAWNR_OK);
    storage = malloc(need + 1);
    EXPECT(rawnr_stripe_init(NULL, storage, need, &s), RAWNR_ERR_NULL);
    CHECK(s == NULL);
    EXPECT(rawnr_stripe_init(d, NULL, need, &s), RAWNR_ERR_NULL);
    EXPECT(rawnr_stripe_init(d, storage, need, NULL), RAWNR_ERR_NULL);
    EXPECT(rawnr_stripe_init((const rawnr_denoiser *)zeros, storage, need, &s),
           RAWNR_ERR_BAD_HANDLE);
    EXPECT(rawnr_stripe_init(d, storage, need - 1, &s), RAWNR_ERR_BUFFER_TOO_SMALL);
    EXPECT(rawnr_stripe_init(d, storage + 1, need, &s), RAWNR_OK); /* any alignment */

    EXPECT(rawnr_stripe_get_info(NULL, &info), RAWNR_ERR_NULL);
    EXPECT(rawnr_stripe_get_info(s, NULL), RAWNR_ERR_NULL);
    EXPECT(rawnr_stripe_get_info((const rawnr_stripe *)zeros, &info), RAWNR_ERR_BAD_HANDLE);
    EXPECT(rawnr_stripe_get_info((const rawnr_stripe *)d, &info), RAWNR_ERR_BAD_HANDLE);
    EXPECT(rawnr_stripe_get_info(s, &info), RAWNR_OK);
    CHECK(info.width == W && info.height == H && info.bands == 2 && info.rows_pushed == 0);
    CHECK(info.band_rows == 64 && info.latency_rows == 64 && info.window_rows == 64);
    EXPECT(rawnr_stripe_max_output_rows(NULL, 8, &max_rows), RAWNR_ERR_NULL);
    EXPECT(rawnr_stripe_max_output_rows(s, 8, NULL), RAWNR_ERR_NULL);
    EXPECT(rawnr_stripe_max_output_rows(s, 0, &max_rows), RAWNR_ERR_BAD_ARGUMENT);
    EXPECT(rawnr_stripe_max_output_rows(s, H, &max_rows), RAWNR_OK);
    CHECK(max_rows == H);
    EXPECT(rawnr_stripe_max_output_rows(s, 1, &max_rows), RAWNR_OK);
    CHECK(max_rows == 64);
    EXPECT(rawnr_stripe_max_output_rows(s, 65, &max_rows), RAWNR_OK);
    CHECK(max_rows == 128);

#define PUSH(s_, rows_, n_, size_, stride_, out_, osize_, ostride_, first_, got_)                  \
    rawnr_stripe_push((s_), (rows_), (n_), (size_), (stride_), (out_), (osize_), (ostride_),     \
                      (first_), (got_))
    EXPECT(PUSH(NULL, frame_in, 4, 4 * rs, rs, out, out_size, rs, &first, &got), RAWNR_ERR_NULL);
    EXPECT(PUSH(s, NULL, 4, 4 * rs, rs, out, out_size, rs, &first, &got), RAWNR_ERR_NULL);
    /* No output for a push that finishes rows (the whole frame). */
    EXPECT(PUSH(s, frame_in, H, sizeof frame_in, rs, NULL, out_size, rs, &first, &got),
           RAWNR_ERR_NULL);
    EXPECT(PUSH(s, frame_in, 4, 4 * rs, rs, out, out_size, rs, NULL, &got), RAWNR_ERR_NULL);
    EXPECT(PUSH(s, frame_in, 4, 4 * rs, rs, out, out_size, rs, &first, NULL), RAWNR_ERR_NULL);
    EXPECT(PUSH((rawnr_stripe *)zeros, frame_in, 4, 4 * rs, rs, out, out_size, rs, &first, &got),
           RAWNR_ERR_BAD_HANDLE);
    EXPECT(PUSH(s, (const uint16_t *)((const char *)frame_in + 1), 4, 4 * rs, rs, out, out_size,
                rs, &first, &got),
           RAWNR_ERR_MISALIGNED);
    EXPECT(PUSH(s, frame_in, 4, 4 * rs, rs, (uint16_t *)((char *)out + 1), out_size - 2, rs,
                &first, &got),
           RAWNR_ERR_MISALIGNED);
    EXPECT(PUSH(s, frame_in, 4, 4 * rs, rs - 1, out, out_size, rs, &first, &got),
           RAWNR_ERR_BAD_STRIDE);
    EXPECT(PUSH(s, frame_in, 4, 4 * rs, 2 * W - 2, out, out_size, rs, &first, &got),
           RAWNR_ERR_BAD_STRIDE);
    EXPECT(PUSH(s, frame_in, 4, 4 * rs, rs, out, out_size, 3, &first, &got), RAWNR_ERR_BAD_STRIDE);
    EXPECT(PUSH(s, frame_in, 4, 3 * rs + 2 * W - 1, rs, out, out_size, rs, &first, &got),
           RAWNR_ERR_BUFFER_TOO_SMALL);
    EXPECT(PUSH(s, frame_in, H + 1, sizeof frame_in, rs, out, out_size, rs, &first, &got),
           RAWNR_ERR_BUFFER_TOO_SMALL);
    /* The whole frame in one push, into an output one row too small: refused, no change. */
    EXPECT(PUSH(s, frame_in, H, sizeof frame_in, rs, out, (H - 1) * rs, rs, &first, &got),
           RAWNR_ERR_BUFFER_TOO_SMALL);
    EXPECT(PUSH(s, frame_in, H, sizeof frame_in, rs, frame_in, sizeof frame_in, rs, &first, &got),
           RAWNR_ERR_OVERLAP);
    /* Finished rows may not land in the stripe's own storage. */
    CHECK(need >= 64 * rs + 64);
    if (need >= 64 * rs + 64) {
        EXPECT(PUSH(s, frame_in, 64, 64 * rs, rs, (uint16_t *)(storage + 32), 64 * rs, rs, &first,
                    &got),
               RAWNR_ERR_OVERLAP);
    }
    EXPECT(rawnr_stripe_get_info(s, &info), RAWNR_OK);
    CHECK(info.rows_pushed == 0 && info.rows_emitted == 0);
    /* Rows past the end of the frame. */
    EXPECT(PUSH(s, frame_in, H - 8, (H - 8) * rs, rs, out, out_size, rs, &first, &got), RAWNR_OK);
    EXPECT(PUSH(s, frame_in, 9, 9 * rs, rs, out, out_size, rs, &first, &got),
           RAWNR_ERR_SIZE_MISMATCH);
    EXPECT(rawnr_stripe_get_info(s, &info), RAWNR_OK);
    CHECK(info.rows_pushed == H - 8);
    EXPECT(rawnr_stripe_reset(NULL), RAWNR_ERR_NULL);
    EXPECT(rawnr_stripe_reset((rawnr_stripe *)zeros), RAWNR_ERR_BAD_HANDLE);
    EXPECT(rawnr_stripe_reset(s), RAWNR_OK);
    EXPECT(rawnr_stripe_get_info(s, &info), RAWNR_OK);
    CHECK(info.rows_pushed == 0 && info.rows_emitted == 0);
    /* A push that finishes no row may pass no output. */
    EXPECT(PUSH(s, frame_in, 4, 4 * rs, rs, NULL, 0, 0, &first, &got), RAWNR_OK);
    CHECK(got == 0);
    EXPECT(rawnr_stripe_reset(s), RAWNR_OK);

    /* Bit-identical to the frame call, whatever the push sizes; frames follow each other. */
    stream(s, H, 0, __LINE__);
    stream(s, 1, 0, __LINE__);
    stream(s, 13, 1, __LINE__);

    /* The denoiser re-initialised for another noise level under the stripe: fine. For another
     * geometry: the stripe refuses to run. */
    c.noise_k = 4e-3f;
    EXPECT(rawnr_denoiser_init(m, &c, den_storage, den_size, &d), RAWNR_OK);
    EXPECT(PUSH(s, frame_in, 4, 4 * rs, rs, out, out_size, rs, &first, &got), RAWNR_OK);
    c.tile = 64;
    EXPECT(rawnr_denoiser_init(m, &c, den_storage, den_size, &d), RAWNR_OK);
    EXPECT(PUSH(s, frame_in, 4, 4 * rs, rs, out, out_size, rs, &first, &got),
           RAWNR_ERR_SIZE_MISMATCH);
    EXPECT(rawnr_stripe_max_output_rows(s, 4, &max_rows), RAWNR_ERR_SIZE_MISMATCH);
    c.tile = 32;
    c.noise_k = 2e-3f;
    EXPECT(rawnr_denoiser_init(m, &c, den_storage, den_size, &d), RAWNR_OK);
    EXPECT(rawnr_stripe_reset(s), RAWNR_OK);
    stream(s, 16, 0, __LINE__);
    /* A freed denoiser, a freed stripe. */
    rawnr_denoiser_free(d);
    EXPECT(PUSH(s, frame_in, 4, 4 * rs, rs, out, out_size, rs, &first, &got),
           RAWNR_ERR_BAD_HANDLE);
    EXPECT(rawnr_denoiser_init(m, &c, den_storage, den_size, &d), RAWNR_OK);
    EXPECT(rawnr_stripe_reset(s), RAWNR_OK);
    rawnr_stripe_free(s);
    EXPECT(rawnr_stripe_reset(s), RAWNR_ERR_BAD_HANDLE);
    rawnr_stripe_free(s); /* a second free is ignored */
    rawnr_stripe_free(NULL);
    /* Heap stripe (std build). */
    EXPECT(rawnr_stripe_new(NULL, &h), RAWNR_ERR_NULL);
    EXPECT(rawnr_stripe_new(d, NULL), RAWNR_ERR_NULL);
    EXPECT(rawnr_stripe_new(d, &h), RAWNR_OK);
    EXPECT(PUSH(h, frame_in, 4, 4 * rs, rs, out, out_size, rs, &first, &got), RAWNR_OK);
    CHECK(got == 0);
    rawnr_stripe_free(h);
    free(storage);
}

int main(int argc, char **argv) {
    static unsigned char model_storage[RAWNR_MODEL_STORAGE_SIZE];
    static unsigned char den_storage[1 << 16];
    unsigned char *bytes;
    size_t len = 0;
    rawnr_model *m;
    rawnr_denoiser *d;

    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.rnm\n", argv[0]);
        return 2;
    }
    bytes = read_file(argv[1], &len); /* malloc: aligned for any type */
    if (!bytes) {
        fprintf(stderr, "%s: cannot read\n", argv[1]);
        return 2;
    }
    test_version();
    m = test_models(argv[1], bytes, len, model_storage);
    d = test_denoisers(m, den_storage, sizeof den_storage);
    test_frames(d, m, den_storage);
    test_stripes(d, m, den_storage, sizeof den_storage);
    /* A freed model: its handle is refused. */
    rawnr_model_free(m);
    {
        size_t n;
        EXPECT(rawnr_denoiser_storage_size(m, &n), RAWNR_ERR_BAD_HANDLE);
    }
    free(bytes);
    if (failures) {
        fprintf(stderr, "test_errors: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("test_errors: %d checks passed\n", checks);
    return 0;
}
