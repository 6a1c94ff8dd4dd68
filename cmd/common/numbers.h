/* Numbers in text, in the C locale whatever the environment says: the programs never call
 * setlocale, so strtod and printf keep "." as the decimal point.
 *
 * Parsing is strict: the whole string must be one number, with no leading blanks, no trailing
 * characters, no overflow. Formatting round-trips: float32 with 9 significant digits, float64
 * with 17. */
#ifndef CLI_NUMBERS_H
#define CLI_NUMBERS_H

#include <stdbool.h>
#include <stdint.h>

/* Base-10 integers; an optional sign ("-" rejected for the unsigned one). */
bool parse_i64(const char *s, int64_t *out);
bool parse_u64(const char *s, uint64_t *out);
/* Finite floating-point values (decimal or hex notation); "nan", "inf" and overflow fail.
 * parse_f32 rounds once, directly to float. */
bool parse_f64(const char *s, double *out);
bool parse_f32(const char *s, float *out);
/* A count such as a length or a size: a base-10 integer with an optional binary multiplier
 * suffix, k or K (1024), M (1024^2) or G (1024^3): "4k" is 4096, "1M" 1048576. */
bool parse_count(const char *s, uint64_t *out);

/* Big enough for any value printed by the functions below, with its terminating NUL. */
#define NUMBER_BUF_SIZE 32
const char *format_f32(char buf[NUMBER_BUF_SIZE], float v);  /* "%.9g" */
const char *format_f64(char buf[NUMBER_BUF_SIZE], double v); /* "%.17g" */

#endif
