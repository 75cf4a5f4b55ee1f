/*
 * example_args.h: the frame and noise options shared by the rawnr examples, parsed into a
 * rawnr_config.
 *
 *   --cfa rggb|bggr|grbg|gbrg    CFA phase of the top-left 2x2 block (default rggb)
 *   --black B | --black R,Gr,Gb,B  black level(s) (default 0)
 *   --white W                    white level (default: the PGM's maxval)
 *   --iso N                      noise from the model's default profile at ISO N (default 1600)
 *   --noise K,S                  noise k and sigma^2 in normalised units (overrides --iso)
 *   --tile N                     tile size in packed pixels (0: whole frame; default 256)
 *   --halo N                     halo in packed pixels (default: the model's)
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef RAWNR_EXAMPLES_ARGS_H
#define RAWNR_EXAMPLES_ARGS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rawnr.h"

/* Parses a comma-separated list of 1..4 floats; returns how many, or 0 on error. */
static inline int args_floats(const char *s, float *out, int max) {
    int n = 0;
    while (n < max) {
        char *end = NULL;
        out[n++] = strtof(s, &end);
        if (end == s) {
            return 0;
        }
        if (*end == '\0') {
            return n;
        }
        if (*end != ',') {
            return 0;
        }
        s = end + 1;
    }
    return 0;
}

/*
 * Handles argv[*i] if it is one of the shared options (consuming its value); returns 1 if it
 * was, 0 if it is not a shared option, -1 on a bad value. `white_set` records --white.
 */
static inline int args_config(int argc, char **argv, int *i, rawnr_config *cfg, int *white_set) {
    const char *opt = argv[*i];
    const char *val;
    float v[4];
    int n;
    if (strcmp(opt, "--cfa") && strcmp(opt, "--black") && strcmp(opt, "--white") &&
        strcmp(opt, "--iso") && strcmp(opt, "--noise") && strcmp(opt, "--tile") &&
        strcmp(opt, "--halo")) {
        return 0;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s needs a value\n", opt);
        return -1;
    }
    val = argv[++*i];
    if (!strcmp(opt, "--cfa")) {
        static const char *names[] = {"rggb", "bggr", "grbg", "gbrg"};
        static const uint32_t codes[] = {RAWNR_CFA_RGGB, RAWNR_CFA_BGGR, RAWNR_CFA_GRBG,
                                         RAWNR_CFA_GBRG};
        for (int k = 0; k < 4; k++) {
            if (!strcmp(val, names[k])) {
                cfg->cfa = codes[k];
                return 1;
            }
        }
        fprintf(stderr, "--cfa %s: expected rggb, bggr, grbg or gbrg\n", val);
        return -1;
    }
    n = args_floats(val, v, 4);
    if (!strcmp(opt, "--black") && (n == 1 || n == 4)) {
        for (int k = 0; k < 4; k++) {
            cfg->black[k] = v[n == 1 ? 0 : k];
        }
        return 1;
    }
    if (!strcmp(opt, "--white") && n == 1) {
        cfg->white = v[0];
        *white_set = 1;
        return 1;
    }
    if (!strcmp(opt, "--iso") && n == 1) {
        cfg->iso = v[0];
        cfg->noise_k = 0.0f;
        return 1;
    }
    if (!strcmp(opt, "--noise") && n == 2) {
        cfg->noise_k = v[0];
        cfg->noise_sigma2 = v[1];
        return 1;
    }
    if (!strcmp(opt, "--tile") && n == 1 && v[0] >= 0.0f) {
        cfg->tile = (uint32_t)v[0];
        return 1;
    }
    if (!strcmp(opt, "--halo") && n == 1) {
        cfg->halo = (int32_t)v[0];
        return 1;
    }
    fprintf(stderr, "%s %s: bad value\n", opt, val);
    return -1;
}

/* Prints a failed call and its status; returns 1 (an exit code). */
static inline int args_fail(const char *what, rawnr_status s) {
    fprintf(stderr, "%s: %s (status %d)\n", what, rawnr_status_string((int32_t)s), (int)s);
    return 1;
}

#endif /* RAWNR_EXAMPLES_ARGS_H */
