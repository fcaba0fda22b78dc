/*
 * Gallery scan kernel for rescue.matching.scan (issue 16, "Speed at scale").
 *
 * A face's head (its leading HEAD dimensions, rescue.matching.gallery) is kept as
 * two uint16 planes: the high and the low 16 bits of each float32 value. The high
 * plane alone is bfloat16 (the float32 with its mantissa truncated to 7 bits), so
 * a scan that reads only it reads half the bytes; the planes together give the
 * float32 value back exactly for the re-check. These functions compute, for rows
 * 0..n-1 and probes 0..q-1,
 *
 *     s[k][i] = sq[i] - 2 * (p_k . bf16(hi_i)  [+ pt_k . tail_i])
 *
 * which is the squared distance to the truncated vector less the probe's own |p|²
 * (sq[i] holds |bf16(hi_i)|² [+ |tail_i|²]). Each row is read once and converted
 * once, whatever the number of probes (a photo with several faces costs little
 * more than one face). With more than one probe, p (and pt) hold q rounded up
 * to a multiple of four rows, zeros beyond q: probes go four at a time.
 *
 * Plain C with an AVX path chosen at run time (x86-64 with AVX, and FMA where
 * the CPU has it: 8 floats per instruction; bf16 -> float32 is a 16-bit shift, done with SSE2 unpacks), and a
 * portable loop elsewhere. Built by `make install` (Makefile, SCAN_LIB); loaded
 * with ctypes, which releases the GIL during the call, so Python threads scan
 * row ranges in parallel. No allocation, no global state.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SCAN_X86 1
#endif

#define MAX_DIM 128

static inline float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static size_t scan_portable(const uint16_t *hi, size_t dh, const float *tail, size_t dt,
                          const float *sq, size_t n, const float *p, const float *pt, int q,
                          float *out, size_t ld, const float *limit, int64_t *rows,
                          int32_t *probes, float *vals, int64_t cap, int64_t *count) {
    float x[MAX_DIM];
    for (size_t i = 0; i < n; i++) {
        if (limit != NULL && *count + q > cap) return i;
        const uint16_t *row = hi + i * dh;
        for (size_t j = 0; j < dh; j++) x[j] = bf16_to_float(row[j]);
        for (int k = 0; k < q; k++) {
            const float *pk = p + (size_t)k * dh;
            float dot = 0.0f;
            for (size_t j = 0; j < dh; j++) dot += pk[j] * x[j];
            if (tail != NULL) {
                const float *tk = pt + (size_t)k * dt, *ti = tail + i * dt;
                for (size_t j = 0; j < dt; j++) dot += tk[j] * ti[j];
            }
            float s = sq[i] - 2.0f * dot;
            if (limit == NULL) {
                out[(size_t)k * ld + i] = s;
            } else if (s <= limit[k]) {
                rows[*count] = (int64_t)i;
                probes[*count] = k;
                vals[*count] = s;
                (*count)++;
            }
        }
    }
    return n;
}

#ifdef SCAN_X86
__attribute__((target("avx"))) static inline float hsum256(__m256 a) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

/* Probe k's value s of row i: stored (dense), or kept if within its limit. */
#define EMIT(K, S)                                                                       \
    do {                                                                                 \
        const int k_ = (K);                                                              \
        const float s_ = (S);                                                            \
        if (limit == NULL) {                                                             \
            out[(size_t)k_ * ld + i] = s_;                                               \
        } else if (s_ <= limit[k_]) {                                                    \
            rows[*count] = (int64_t)i;                                                   \
            probes[*count] = k_;                                                         \
            vals[*count] = s_;                                                           \
            (*count)++;                                                                  \
        }                                                                                \
    } while (0)

/* dh and dt multiples of 8, dh <= MAX_DIM. Defined twice: with FMA (one
 * instruction per multiply-add) and, for CPUs without it, with AVX alone. The
 * row is converted once into registers; one probe runs three accumulator chains,
 * two and three probes their own code, more four probes at once (four chains,
 * one reduction). Instructions per row at 96 dimensions (callgrind, AVX+FMA):
 * 83 for one probe, 117 for three, 258 for eight (one probe at a time before:
 * 101 / 177 / 367). */
#define SCAN_AVX_BODY(MADD, BLOCKS)                                                            \
    __m256 x[MAX_DIM / 8];                                                               \
    const __m128i zero = _mm_setzero_si128();                                            \
    const size_t blocks = (BLOCKS);                                                      \
    for (size_t i = 0; i < n; i++) {                                                     \
        if (limit != NULL && *count + q > cap) return i;                                 \
        const uint16_t *row = hi + i * dh;                                               \
        for (size_t b = 0; b < blocks; b++) {                                            \
            __m128i h = _mm_loadu_si128((const __m128i *)(row + 8 * b));                 \
            __m128 lo = _mm_castsi128_ps(_mm_unpacklo_epi16(zero, h));                   \
            __m128 up = _mm_castsi128_ps(_mm_unpackhi_epi16(zero, h));                   \
            x[b] = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), up, 1);              \
        }                                                                                \
        if (q == 1) {                                                                    \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                   \
            __m256 a2 = _mm256_setzero_ps();                                             \
            size_t b = 0;                                                                \
            for (; b + 2 < blocks; b += 3) {                                             \
                a0 = MADD(x[b], _mm256_loadu_ps(p + 8 * b), a0);                         \
                a1 = MADD(x[b + 1], _mm256_loadu_ps(p + 8 * b + 8), a1);                 \
                a2 = MADD(x[b + 2], _mm256_loadu_ps(p + 8 * b + 16), a2);                \
            }                                                                            \
            for (; b < blocks; b++) a0 = MADD(x[b], _mm256_loadu_ps(p + 8 * b), a0);    \
            if (tail != NULL) {                                                          \
                const float *ti = tail + i * dt;                                         \
                for (size_t j = 0; j < dt; j += 8)                                       \
                    a1 = MADD(_mm256_loadu_ps(ti + j), _mm256_loadu_ps(pt + j), a1);     \
            }                                                                            \
            EMIT(0, sq[i] - 2.0f * hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), a2)));   \
            continue;                                                                    \
        }                                                                                \
        if (q == 2) { /* a photo with two faces */                                     \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                   \
            __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps();                   \
            size_t b = 0;                                                                \
            for (; b + 1 < blocks; b += 2) {                                             \
                a0 = MADD(x[b], _mm256_loadu_ps(p + 8 * b), a0);                         \
                a1 = MADD(x[b], _mm256_loadu_ps(p + dh + 8 * b), a1);                    \
                c0 = MADD(x[b + 1], _mm256_loadu_ps(p + 8 * b + 8), c0);                 \
                c1 = MADD(x[b + 1], _mm256_loadu_ps(p + dh + 8 * b + 8), c1);            \
            }                                                                            \
            for (; b < blocks; b++) {                                                    \
                a0 = MADD(x[b], _mm256_loadu_ps(p + 8 * b), a0);                         \
                a1 = MADD(x[b], _mm256_loadu_ps(p + dh + 8 * b), a1);                    \
            }                                                                            \
            if (tail != NULL) {                                                          \
                const float *ti = tail + i * dt;                                         \
                for (size_t j = 0; j < dt; j += 8) {                                     \
                    __m256 tb = _mm256_loadu_ps(ti + j);                                 \
                    a0 = MADD(tb, _mm256_loadu_ps(pt + j), a0);                          \
                    a1 = MADD(tb, _mm256_loadu_ps(pt + dt + j), a1);                     \
                }                                                                        \
            }                                                                            \
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(c0, c1));    \
            __m128 dot = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)); \
            dot = _mm_add_ps(dot, _mm_movehl_ps(dot, dot)); /* (a0+c0, a1+c1, ..) */     \
            float sk[4];                                                                 \
            _mm_storeu_ps(sk, _mm_sub_ps(_mm_set1_ps(sq[i]), _mm_add_ps(dot, dot)));     \
            EMIT(0, sk[0]);                                                              \
            EMIT(1, sk[1]);                                                              \
            continue;                                                                    \
        }                                                                                \
        if (q == 3) { /* a photo with three faces: no padded fourth chain */          \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                   \
            __m256 a2 = _mm256_setzero_ps();                                             \
            for (size_t b = 0; b < blocks; b++) {                                        \
                a0 = MADD(x[b], _mm256_loadu_ps(p + 8 * b), a0);                         \
                a1 = MADD(x[b], _mm256_loadu_ps(p + dh + 8 * b), a1);                    \
                a2 = MADD(x[b], _mm256_loadu_ps(p + 2 * dh + 8 * b), a2);                \
            }                                                                            \
            if (tail != NULL) {                                                          \
                const float *ti = tail + i * dt;                                         \
                for (size_t j = 0; j < dt; j += 8) {                                     \
                    __m256 tb = _mm256_loadu_ps(ti + j);                                 \
                    a0 = MADD(tb, _mm256_loadu_ps(pt + j), a0);                          \
                    a1 = MADD(tb, _mm256_loadu_ps(pt + dt + j), a1);                     \
                    a2 = MADD(tb, _mm256_loadu_ps(pt + 2 * dt + j), a2);                 \
                }                                                                        \
            }                                                                            \
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a2));    \
            __m128 dot = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)); \
            float sk[4];                                                                 \
            _mm_storeu_ps(sk, _mm_sub_ps(_mm_set1_ps(sq[i]), _mm_add_ps(dot, dot)));     \
            EMIT(0, sk[0]);                                                              \
            EMIT(1, sk[1]);                                                              \
            EMIT(2, sk[2]);                                                              \
            continue;                                                                    \
        }                                                                                \
        /* Four probes at a time (p padded with zero rows to a multiple of four):      \
         * four independent chains, their sums reduced together. */                    \
        for (int k0 = 0; k0 < q; k0 += 4) {                                              \
            const float *p0 = p + (size_t)k0 * dh;                                       \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                   \
            __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();                   \
            for (size_t b = 0; b < blocks; b++) {                                        \
                a0 = MADD(x[b], _mm256_loadu_ps(p0 + 8 * b), a0);                        \
                a1 = MADD(x[b], _mm256_loadu_ps(p0 + dh + 8 * b), a1);                   \
                a2 = MADD(x[b], _mm256_loadu_ps(p0 + 2 * dh + 8 * b), a2);               \
                a3 = MADD(x[b], _mm256_loadu_ps(p0 + 3 * dh + 8 * b), a3);               \
            }                                                                            \
            if (tail != NULL) {                                                          \
                const float *ti = tail + i * dt, *t0 = pt + (size_t)k0 * dt;             \
                for (size_t j = 0; j < dt; j += 8) {                                     \
                    __m256 tb = _mm256_loadu_ps(ti + j);                                 \
                    a0 = MADD(tb, _mm256_loadu_ps(t0 + j), a0);                          \
                    a1 = MADD(tb, _mm256_loadu_ps(t0 + dt + j), a1);                     \
                    a2 = MADD(tb, _mm256_loadu_ps(t0 + 2 * dt + j), a2);                 \
                    a3 = MADD(tb, _mm256_loadu_ps(t0 + 3 * dt + j), a3);                 \
                }                                                                        \
            }                                                                            \
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));    \
            __m128 dot = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)); \
            float sk[4];                                                                 \
            _mm_storeu_ps(sk, _mm_sub_ps(_mm_set1_ps(sq[i]), _mm_add_ps(dot, dot)));     \
            const int m = q - k0 < 4 ? q - k0 : 4;                                       \
            for (int j = 0; j < m; j++) EMIT(k0 + j, sk[j]);                             \
        }                                                                                \
    }                                                                                    \
    return n;

#define SCAN_ARGS                                                                        \
    const uint16_t *hi, size_t dh, const float *tail, size_t dt, const float *sq,        \
        size_t n, const float *p, const float *pt, int q, float *out, size_t ld,         \
        const float *limit, int64_t *rows, int32_t *probes, float *vals, int64_t cap,    \
        int64_t *count

#define MADD_AVX(a, b, c) _mm256_add_ps((c), _mm256_mul_ps((a), (b)))
#define MADD_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))

__attribute__((target("avx"))) static size_t scan_avx(SCAN_ARGS) {
    SCAN_AVX_BODY(MADD_AVX, dh / 8)
}

__attribute__((target("avx,fma"))) static size_t scan_fma(SCAN_ARGS) {
    SCAN_AVX_BODY(MADD_FMA, dh / 8)
}

/* The gallery's head (96 dimensions): a constant count of blocks, so the loops
 * over them unroll and the converted row stays in registers across the probes. */
__attribute__((target("avx,fma"))) static size_t scan_fma96(SCAN_ARGS) {
    SCAN_AVX_BODY(MADD_FMA, 12)
}
#endif

/* Which path scan() takes: 0 the best the CPU has; 1 portable, 2 AVX, 3 AVX+FMA
 * for any width (tests use it to check every path on one machine). */
static int forced_path = 0;

void rescue_scan_force_path(int path) { forced_path = path; }

static size_t scan(const uint16_t *hi, size_t dh, const float *tail, size_t dt, const float *sq,
                   size_t n, const float *p, const float *pt, int q, float *out, size_t ld,
                   const float *limit, int64_t *rows, int32_t *probes, float *vals, int64_t cap,
                   int64_t *count) {
#ifdef SCAN_X86
    int fits = dh % 8 == 0 && dt % 8 == 0 && dh <= MAX_DIM && forced_path != 1;
    int avx = fits && __builtin_cpu_supports("avx");
    int fma = avx && __builtin_cpu_supports("fma") && forced_path != 2;
    if (fma && dh == 96 && forced_path == 0)
        return scan_fma96(hi, dh, tail, dt, sq, n, p, pt, q, out, ld, limit, rows, probes, vals,
                          cap, count);
    if (fma)
        return scan_fma(hi, dh, tail, dt, sq, n, p, pt, q, out, ld, limit, rows, probes, vals,
                        cap, count);
    if (avx)
        return scan_avx(hi, dh, tail, dt, sq, n, p, pt, q, out, ld, limit, rows, probes, vals,
                        cap, count);
#endif
    return scan_portable(hi, dh, tail, dt, sq, n, p, pt, q, out, ld, limit, rows, probes, vals,
                         cap, count);
}

/* Every value: out[k * ld + i] for i < n, k < q. tail may be NULL (dt ignored). */
void rescue_scan_dense(const uint16_t *hi, size_t dh, const float *tail, size_t dt,
                       const float *sq, size_t n, const float *p, const float *pt, int q,
                       float *out, size_t ld) {
    int64_t count = 0;
    scan(hi, dh, tail, dt, sq, n, p, pt, q, out, ld, NULL, NULL, NULL, NULL, 0, &count);
}

/* Only values s <= limit[k]: (row, probe, s) appended in row order, at most cap
 * of them (cap >= q), a row's probes never split. Returns how many were stored;
 * *next is the first row not scanned (n when done: call again from there). */
int64_t rescue_scan_within(const uint16_t *hi, size_t dh, const float *sq, size_t n,
                           const float *p, int q, const float *limit, int64_t *rows,
                           int32_t *probes, float *vals, int64_t cap, size_t *next) {
    int64_t count = 0;
    *next = scan(hi, dh, NULL, 0, sq, n, p, NULL, q, NULL, 0, limit, rows, probes, vals, cap,
                 &count);
    return count;
}

/* The library's interface version (rescue.matching.scan checks it). */
int rescue_scan_version(void) { return 5; }
