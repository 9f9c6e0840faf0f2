/* input.h -- reading a fuzz input as a stream of small decisions, and the
 * one way a target reports a broken invariant.
 *
 * Every take_* returns 0 once the input is used up, so a short input is a
 * valid input with default choices (the fuzzer starts from empty). */
#ifndef EVSF_FUZZ_INPUT_H
#define EVSF_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct input {
    const uint8_t *p;
    size_t left;
} input_t;

static inline uint8_t take_u8(input_t *in) {
    if (in->left == 0) return 0;
    in->left--;
    return *in->p++;
}

static inline uint16_t take_u16(input_t *in) {
    uint16_t hi = take_u8(in);
    return (uint16_t)(hi << 8 | take_u8(in));
}

static inline uint32_t take_u32(input_t *in) {
    uint32_t hi = take_u16(in);
    return hi << 16 | take_u16(in);
}

static inline uint64_t take_u64(input_t *in) {
    uint64_t hi = take_u32(in);
    return hi << 32 | take_u32(in);
}

/* An invariant broke: say which, then abort (libFuzzer saves the input; the
 * replay driver dies, so its CTest entry fails). */
#define FUZZ_CHECK(cond, ...)                                                       \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            abort();                                                                \
        }                                                                           \
    } while (0)

#endif
