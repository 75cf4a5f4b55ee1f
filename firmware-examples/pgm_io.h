/*
 * pgm_io.h: minimal binary PGM (P5) streaming for the rawnr examples. Samples are 16-bit
 * big-endian when maxval > 255, else 8-bit. No allocation: rows are read into and written from
 * caller buffers.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef RAWNR_EXAMPLES_PGM_IO_H
#define RAWNR_EXAMPLES_PGM_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct pgm_header {
    uint32_t width;
    uint32_t height;
    uint32_t maxval;
} pgm_header;

/* Skips whitespace and '#' comments; returns the next character (not consumed) or EOF. */
static inline int pgm_skip(FILE *f) {
    for (;;) {
        int c = fgetc(f);
        if (c == '#') {
            while (c != '\n' && c != EOF) {
                c = fgetc(f);
            }
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        } else {
            if (c != EOF) {
                ungetc(c, f);
            }
            return c;
        }
    }
}

static inline int pgm_read_uint(FILE *f, uint32_t *v) {
    int c = pgm_skip(f);
    uint64_t x = 0;
    int digits = 0;
    if (c == EOF) {
        return -1;
    }
    while ((c = fgetc(f)) != EOF && c >= '0' && c <= '9') {
        x = x * 10u + (uint64_t)(c - '0');
        if (x > 0xFFFFFFFFu) {
            return -1;
        }
        digits++;
    }
    if (digits == 0 || c == EOF) {
        return -1;
    }
    ungetc(c, f);
    *v = (uint32_t)x;
    return 0;
}

/* Reads the header; afterwards `f` is at the first sample. Returns 0 or -1. */
static inline int pgm_read_header(FILE *f, pgm_header *h) {
    int c;
    if (fgetc(f) != 'P' || fgetc(f) != '5') {
        return -1;
    }
    if (pgm_read_uint(f, &h->width) || pgm_read_uint(f, &h->height) ||
        pgm_read_uint(f, &h->maxval)) {
        return -1;
    }
    if (h->width == 0 || h->height == 0 || h->maxval == 0 || h->maxval > 65535) {
        return -1;
    }
    c = fgetc(f); /* exactly one whitespace character before the samples */
    return (c == ' ' || c == '\t' || c == '\n' || c == '\r') ? 0 : -1;
}

/* Reads `n` rows of `h->width` samples into `dst`, rows `stride` pixels apart. */
static inline int pgm_read_rows(FILE *f, const pgm_header *h, uint16_t *dst, size_t stride, size_t n) {
    size_t w = h->width;
    for (size_t r = 0; r < n; r++) {
        uint16_t *row = dst + r * stride;
        unsigned char *bytes = (unsigned char *)row;
        if (h->maxval > 255) {
            if (fread(bytes, 2, w, f) != w) {
                return -1;
            }
            /* Big-endian to host, in place: sample i only reads bytes 2i and 2i+1. */
            for (size_t i = 0; i < w; i++) {
                row[i] = (uint16_t)((bytes[2 * i] << 8) | bytes[2 * i + 1]);
            }
        } else {
            if (fread(bytes, 1, w, f) != w) {
                return -1;
            }
            for (size_t i = w; i-- > 0;) {
                row[i] = bytes[i];
            }
        }
    }
    return 0;
}

static inline int pgm_write_header(FILE *f, uint32_t width, uint32_t height, uint32_t maxval) {
    return fprintf(f, "P5\n%u %u\n%u\n", (unsigned)width, (unsigned)height, (unsigned)maxval) > 0
               ? 0
               : -1;
}

/* Writes `n` rows of `width` 16-bit samples (big-endian), rows `stride` pixels apart. */
static inline int pgm_write_rows(FILE *f, const uint16_t *src, size_t stride, size_t width, size_t n) {
    unsigned char chunk[1024];
    for (size_t r = 0; r < n; r++) {
        const uint16_t *row = src + r * stride;
        size_t i = 0;
        while (i < width) {
            size_t k = 0;
            for (; k < sizeof chunk / 2 && i < width; k++, i++) {
                chunk[2 * k] = (unsigned char)(row[i] >> 8);
                chunk[2 * k + 1] = (unsigned char)(row[i] & 0xFF);
            }
            if (fwrite(chunk, 2, k, f) != k) {
                return -1;
            }
        }
    }
    return 0;
}

#endif /* RAWNR_EXAMPLES_PGM_IO_H */
