/* A tiny test harness: each TEST prints "PASS name" or "FAIL name: why" on stdout, which
 * tests/run.sh counts. CHECK records a failure and goes on; REQUIRE leaves the test. */
#ifndef LR_TEST_CHECK_H
#define LR_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_failures_ __attribute__((unused)); /* failures in the current test */
static int check_total_failed_ __attribute__((unused));

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            if (check_failures_++ < 5)                                                      \
                printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);          \
        }                                                                                   \
    } while (0)
#define CHECKF(cond, ...)                                                                   \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            if (check_failures_++ < 5) {                                                    \
                printf("  %s:%d: ", __FILE__, __LINE__);                                    \
                printf(__VA_ARGS__);                                                        \
                printf("\n");                                                               \
            }                                                                               \
        }                                                                                   \
    } while (0)
#define REQUIRE(cond)                                                                       \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            printf("  %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond);            \
            check_failures_++;                                                              \
            return;                                                                         \
        }                                                                                   \
    } while (0)

#define RUN(test)                                                                           \
    do {                                                                                    \
        check_failures_ = 0;                                                                \
        test();                                                                             \
        if (check_failures_) {                                                              \
            printf("FAIL %s: %d check(s) failed\n", #test, check_failures_);               \
            check_total_failed_++;                                                          \
        } else {                                                                            \
            printf("PASS %s\n", #test);                                                     \
        }                                                                                   \
        fflush(stdout);                                                                     \
    } while (0)

#define CHECK_DONE() (check_total_failed_ ? 1 : 0)

#endif
