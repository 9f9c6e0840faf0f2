/* input.h -- what every fuzz target shares: reading an input as a stream of
 * small decisions, the one way to report a broken invariant, the fd count.
 *
 * Every take_* returns 0 once the input is used up, so a short input is a
 * valid input with default choices (the fuzzer starts from empty). */
#ifndef EVSF_FUZZ_INPUT_H
#define EVSF_FUZZ_INPUT_H

#include <dirent.h>
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

/* Open fds of this process (entries of /proc/self/fd), -1 if unreadable.
 * Targets compare it per input: nothing may be left open. */
static inline int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (d == NULL) return -1;
    while (readdir(d) != NULL) n++;
    closedir(d);
    return n;
}

#endif
