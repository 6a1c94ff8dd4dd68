/* Strict number parsing and round-trip formatting (see numbers.h). */
#include "numbers.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* strto* skip leading white space and accept an empty string as 0; we accept neither. */
static bool starts_like_number(const char *s)
{
    return *s != '\0' && !isspace((unsigned char)*s);
}

bool parse_i64(const char *s, int64_t *out)
{
    if (!starts_like_number(s))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

bool parse_u64(const char *s, uint64_t *out)
{
    /* strtoull would turn "-1" into the largest value. */
    if (!starts_like_number(s) || *s == '-')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (uint64_t)v;
    return true;
}

bool parse_count(const char *s, uint64_t *out)
{
    if (!starts_like_number(s) || *s == '-' || *s == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return false;
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'M')
        shift = 20;
    else if (*end == 'G')
        shift = 30;
    if (shift)
        end++;
    if (*end != '\0' || v > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

bool parse_f64(const char *s, double *out)
{
    if (!starts_like_number(s))
        return false;
    char *end;
    double v = strtod(s, &end);
    /* Overflow gives infinity, caught here; underflow gives the nearest value, kept. */
    if (*end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool parse_f32(const char *s, float *out)
{
    if (!starts_like_number(s))
        return false;
    char *end;
    float v = strtof(s, &end);
    if (*end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

const char *format_f32(char buf[NUMBER_BUF_SIZE], float v)
{
    snprintf(buf, NUMBER_BUF_SIZE, "%.9g", (double)v);
    return buf;
}

const char *format_f64(char buf[NUMBER_BUF_SIZE], double v)
{
    snprintf(buf, NUMBER_BUF_SIZE, "%.17g", v);
    return buf;
}
