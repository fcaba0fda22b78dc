/*
 * Gallery scan kernel for rescue.matching.scan (issue 16, "Speed at scale").
 *
 * A face's vector is kept as 32-bit fixed point of the face's own scale
 * (rescue.matching.scan.encode_rows): value = scale * (hi + lo / 2^24), hi a
 * signed byte (the value rounded to a step of `scale`, |hi| <= 127) and lo the 24
 * bits below it. A scan reads the hi plane alone, 128 bytes per face (a quarter
 * of float32, half of bfloat16), and multiplies it into probes held as int16 of
 * a step t_k each (|P_k| <= 32767), in integers: for rows 0..n-1, probes 0..q-1
 *
 *     s[k][i] = sq[i] + c[k] * (scale[i] * (float)(P_k . hi_i)),   c[k] = -2 t_k
 *
 * which is |x~|^2 - 2 p_k . x~ for the rounded vector x~ = scale * hi, less the
 * probe's rounding (at most t_k * |x~|_1; the gallery widens its bounds by it).
 * The dot product is exact: |P . hi| <= dh * 32767 * 127 < 2^31 for dh <= 512.
 * Each row is read once and widened once, whatever the number of probes.
 *
 * Paths, chosen at run time (rescue_scan_force_path lets tests take each):
 * - AVX2 for the gallery's 128 dimensions: rows in tiles that stay in L1, probes
 *   in groups of 1-4 with code generated per group (each group's four sums
 *   reduced together), 16 products per vpmaddwd + vpaddd, rows prefetched ahead;
 *   the same with VNNI's vpdpwssd (the two in one instruction) where the CPU has
 *   AVX-VNNI or AVX512-VNNI. Measured (AMD EPYC VM, 2 threads, 1 M rows, bound
 *   0.64): one probe 2.5-2.8 ms on either; three probes 4.0 ms on AVX2 (the
 *   multiply-adds bound it), 3.1 ms with VNNI;
 * - a portable loop elsewhere (the compiler vectorises it for the baseline ISA).
 * Built by `make install` (Makefile, SCAN_LIB); loaded with ctypes, which releases
 * the GIL during the call, so Python threads scan row ranges in parallel. No
 * allocation, no global state but the forced path.
 */
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SCAN_X86 1
#endif

/* Where a scan's values go: out[k * ld + i] (dense: limit NULL), or (row, probe,
 * s) appended for s <= limit[k], at most cap of them. */
typedef struct {
    float *out;
    size_t ld;
    const float *limit;
    int64_t *rows;
    int32_t *probes;
    float *vals;
    int64_t cap;
    int64_t count;
} sink_t;

static inline void emit(sink_t *o, size_t i, int k, float s) {
    if (o->limit == NULL) {
        o->out[(size_t)k * o->ld + i] = s;
    } else if (s <= o->limit[k]) {
        o->rows[o->count] = (int64_t)i;
        o->probes[o->count] = k;
        o->vals[o->count] = s;
        o->count++;
    }
}

/* The bound's buffer cannot take one more row's values: stop before row i. */
static inline int full(const sink_t *o, int q) {
    return o->limit != NULL && o->count + q > o->cap;
}

/* s from a row's exact integer dot product (the same operations on every path). */
static inline float value(float sq, float scale, float c, int32_t dot) {
    volatile float scaled = scale * (float)dot; /* no contraction into an FMA */
    return sq + c * scaled;
}

static inline int32_t dot_row(const int8_t *row, const int16_t *p, size_t dh) {
    int32_t dot = 0;
    for (size_t j = 0; j < dh; j++) dot += (int32_t)p[j] * (int32_t)row[j];
    return dot;
}

#define SCAN_ARGS                                                                          \
    const int8_t *hi, size_t dh, const float *sq, const float *scale, size_t n,           \
        const int16_t *p, const float *c, int q, sink_t *o

static size_t scan_portable(SCAN_ARGS) {
    for (size_t i = 0; i < n; i++) {
        if (full(o, q)) return i;
        const int8_t *row = hi + i * dh;
        for (int k = 0; k < q; k++)
            emit(o, i, k, value(sq[i], scale[i], c[k], dot_row(row, p + (size_t)k * dh, dh)));
    }
    return n;
}

#ifdef SCAN_X86
/* ---- AVX2 for the gallery's vectors (128 dimensions) ------------------------------
 * Rows go in tiles of TILE (their bytes stay in L1); within a tile, probes in
 * groups of G = 1, 2 or 4, each group's code generated for its size, R = 4 / G
 * rows at a time: the R * G = 4 sums (8 int32 lanes each) are reduced together
 * by two horizontal adds. Each 16 bytes of a row are widened to int16 once and
 * multiplied into every probe of the group, 16 values per vpmaddwd. Rows
 * PREFETCH_ROWS ahead are prefetched (the bfloat16 kernel this replaced measured
 * 87 -> 40 cycles per row for three probes with prefetching: the hardware
 * streamer alone left the loop waiting on memory). */
#define TILE 64
#define WIDTH 128
#define PREFETCH_ROWS 16
#define MAX_PROBES 64

#define AVX2 __attribute__((target("avx2")))

/* Rows 0..m-1 of a tile against the group's G probes (p: G rows of WIDTH int16,
 * c: G factors), of which the first `real` are written:
 * dst[k * dld + i] = s for probe k, row i. R = 4 / G rows go together (1 for
 * G = 3), so that the R * G sums (a zero fourth for G = 3) are reduced together
 * by two horizontal adds. DOT(acc, x, p) adds the pairwise products of 16 int16
 * into 8 int32: vpmaddwd + vpaddd on AVX2, one vpdpwssd with VNNI. */
#define TILE_GROUP_BODY(DOT)                                                                \
    const int R = 4 / G;                                                                    \
    const __m128 cv = G == 1 ? _mm_set1_ps(c[0])                                            \
                      : G == 2 ? _mm_setr_ps(c[0], c[1], c[0], c[1])                        \
                               : _mm_loadu_ps(c);                                           \
    size_t i = 0;                                                                           \
    for (; i + (size_t)R <= m; i += (size_t)R) {                                            \
        const char *ahead = (const char *)(hi + (i + PREFETCH_ROWS) * WIDTH);               \
        for (int line = 0; line < R * WIDTH; line += 64)                                    \
            _mm_prefetch(ahead + line, _MM_HINT_T0);                                        \
        __m256i a[4];                                                                       \
        for (int j = 0; j < 4; j++) a[j] = _mm256_setzero_si256();                          \
        for (int ch = 0; ch < WIDTH / 16; ch++) {                                           \
            for (int r = 0; r < R; r++) {                                                   \
                __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128(                           \
                    (const __m128i *)(hi + (i + (size_t)r) * WIDTH + 16 * ch)));            \
                for (int k = 0; k < G; k++) {                                               \
                    __m256i pk =                                                            \
                        _mm256_loadu_si256((const __m256i *)(p + k * WIDTH + 16 * ch));     \
                    a[r * G + k] = DOT(a[r * G + k], x, pk);                                \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
        __m256i h =                                                                         \
            _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3])); \
        __m128 dot = _mm_cvtepi32_ps(                                                       \
            _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));      \
        __m128 sc, sv;                                                                      \
        if (G == 1) {                                                                       \
            sc = _mm_loadu_ps(scale + i);                                                   \
            sv = _mm_loadu_ps(sq + i);                                                      \
        } else if (G == 2) {                                                                \
            sc = _mm_setr_ps(scale[i], scale[i], scale[i + 1], scale[i + 1]);               \
            sv = _mm_setr_ps(sq[i], sq[i], sq[i + 1], sq[i + 1]);                           \
        } else {                                                                            \
            sc = _mm_set1_ps(scale[i]);                                                     \
            sv = _mm_set1_ps(sq[i]);                                                        \
        }                                                                                   \
        float v[4];                                                                         \
        _mm_storeu_ps(v, _mm_add_ps(sv, _mm_mul_ps(cv, _mm_mul_ps(sc, dot))));              \
        for (int r = 0; r < R; r++)                                                         \
            for (int k = 0; k < real; k++)                                                  \
                dst[(size_t)k * dld + i + (size_t)r] = v[r * G + k];                        \
    }                                                                                       \
    for (; i < m; i++) /* the tile's last rows, fewer than R */                             \
        for (int k = 0; k < real; k++)                                                      \
            dst[(size_t)k * dld + i] =                                                      \
                value(sq[i], scale[i], c[k], dot_row(hi + i * WIDTH, p + k * WIDTH, WIDTH));

#define TILE_ARGS                                                                           \
    const int8_t *hi, const float *sq, const float *scale, size_t m, const int16_t *p,      \
        const float *c, int real, float *dst, size_t dld

#define DOT_AVX2(acc, x, p) _mm256_add_epi32((acc), _mm256_madd_epi16((x), (p)))
#define DOT_AVXVNNI(acc, x, p) _mm256_dpwssd_avx_epi32((acc), (x), (p))
#define DOT_AVX512VNNI(acc, x, p) _mm256_dpwssd_epi32((acc), (x), (p))
#define VNNI __attribute__((target("avx2,avxvnni")))
#define VNNI512 __attribute__((target("avx2,avx512vl,avx512vnni")))

/* One function per instruction set and group size, so that each group's
 * accumulators stay in registers. */
#define TILE_FN(ISA, ATTR, DOT, NG)                                                         \
    ATTR static void tile_##ISA##_##NG(TILE_ARGS) {                                          \
        const int G = NG;                                                                   \
        TILE_GROUP_BODY(DOT)                                                                \
    }

typedef void (*tile_fn)(TILE_ARGS);

/* Probes in groups of 4, then 3, 2 or 1 (a group of 3 reduces a zero sum as its
 * fourth: p and c hold q rounded up to a multiple of four when q > 1). For a
 * bound, a tile's rows within it are found eight at a time per probe (a compare
 * and a mask), then emitted in row order as the portable loop does. */
#define SCAN_FN(ISA, ATTR, DOT)                                                             \
    TILE_FN(ISA, ATTR, DOT, 1)                                                              \
    TILE_FN(ISA, ATTR, DOT, 2)                                                              \
    TILE_FN(ISA, ATTR, DOT, 3)                                                              \
    TILE_FN(ISA, ATTR, DOT, 4)                                                              \
    ATTR static size_t scan_##ISA(SCAN_ARGS) {                                               \
        static const tile_fn by_size[5] = {NULL, tile_##ISA##_1, tile_##ISA##_2,             \
                                           tile_##ISA##_3, tile_##ISA##_4};                  \
        (void)dh; /* WIDTH: choose() checked */                                             \
        float buf[MAX_PROBES * TILE];                                                       \
        for (size_t t0 = 0; t0 < n; t0 += TILE) {                                           \
            size_t m = n - t0 < TILE ? n - t0 : TILE;                                       \
            float *dst = o->limit == NULL ? o->out + t0 : buf;                              \
            size_t dld = o->limit == NULL ? o->ld : TILE;                                   \
            for (int k0 = 0; k0 < q;) {                                                     \
                int g = q - k0 < 4 ? q - k0 : 4;                                            \
                by_size[g](hi + t0 * WIDTH, sq + t0, scale + t0, m, p + (size_t)k0 * WIDTH, \
                           c + k0, g, dst + (size_t)k0 * dld, dld);                         \
                k0 += g;                                                                    \
            }                                                                               \
            if (o->limit == NULL) continue;                                                 \
            uint64_t pass = 0;                                                              \
            for (int k = 0; k < q; k++) {                                                   \
                const __m256 lim = _mm256_set1_ps(o->limit[k]);                             \
                for (size_t r = 0; r < m; r += 8) {                                         \
                    __m256 v = _mm256_loadu_ps(buf + (size_t)k * TILE + r);                 \
                    pass |= (uint64_t)_mm256_movemask_ps(_mm256_cmp_ps(v, lim, _CMP_LE_OQ)) \
                            << r;                                                           \
                }                                                                           \
            }                                                                               \
            if (m < TILE) pass &= (UINT64_C(1) << m) - 1; /* beyond m: an earlier tile */   \
            while (pass) {                                                                  \
                size_t r = (size_t)__builtin_ctzll(pass);                                   \
                pass &= pass - 1;                                                           \
                if (full(o, q)) return t0 + r;                                              \
                for (int k = 0; k < q; k++) emit(o, t0 + r, k, buf[(size_t)k * TILE + r]);  \
            }                                                                               \
        }                                                                                   \
        return n;                                                                           \
    }

SCAN_FN(avx2, AVX2, DOT_AVX2)
SCAN_FN(avx512vnni, VNNI512, DOT_AVX512VNNI)
SCAN_FN(avxvnni, VNNI, DOT_AVXVNNI)
#endif

/* Which path scan() takes: 0 the best the CPU has; 1 portable; 2 AVX2, 3 AVX2 with
 * AVX512-VNNI's 256-bit vpdpwssd, 4 AVX2 with AVX-VNNI's (the last three for 128
 * dimensions). Tests force each on one machine; a path the CPU or the shape does
 * not allow falls back to the next lower one. */
static int forced_path = 0;

void rescue_scan_force_path(int path) { forced_path = path; }

/* The path scan() takes for rows of dh values and q probes (numbered as above). */
static int choose(size_t dh, int q) {
#ifdef SCAN_X86
    const int f = forced_path == 0 ? 4 : forced_path;
    if (dh != WIDTH || q > MAX_PROBES || !__builtin_cpu_supports("avx2")) return 1;
    if (f >= 4 && __builtin_cpu_supports("avxvnni")) return 4;
    if (f >= 3 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl"))
        return 3;
    if (f >= 2) return 2;
#else
    (void)dh;
    (void)q;
#endif
    return 1;
}

static size_t scan(SCAN_ARGS) {
    switch (choose(dh, q)) {
#ifdef SCAN_X86
    case 4: return scan_avxvnni(hi, dh, sq, scale, n, p, c, q, o);
    case 3: return scan_avx512vnni(hi, dh, sq, scale, n, p, c, q, o);
    case 2: return scan_avx2(hi, dh, sq, scale, n, p, c, q, o);
#endif
    default: return scan_portable(hi, dh, sq, scale, n, p, c, q, o);
    }
}
/* The path a search of the gallery's vectors (128 values, one probe) takes, as
 * choose() numbers them (rescue doctor names it). */
int rescue_scan_path(void) { return choose(128, 1); }

/* Every value: out[k * ld + i] for i < n, k < q. */
void rescue_scan_dense(const int8_t *hi, size_t dh, const float *sq, const float *scale,
                       size_t n, const int16_t *p, const float *c, int q, float *out, size_t ld) {
    sink_t o = {out, ld, NULL, NULL, NULL, NULL, 0, 0};
    scan(hi, dh, sq, scale, n, p, c, q, &o);
}

/* Only values s <= limit[k]: (row, probe, s) appended in row order, at most cap of
 * them (cap >= q), a row's probes never split. Returns how many were stored; *next
 * is the first row not scanned (n when done: call again from there). */
int64_t rescue_scan_within(const int8_t *hi, size_t dh, const float *sq, const float *scale,
                           size_t n, const int16_t *p, const float *c, int q, const float *limit,
                           int64_t *rows, int32_t *probes, float *vals, int64_t cap,
                           size_t *next) {
    sink_t o = {NULL, 0, limit, rows, probes, vals, cap, 0};
    *next = scan(hi, dh, sq, scale, n, p, c, q, &o);
    return o.count;
}

/* The library's interface version (rescue.matching.scan checks it). */
int rescue_scan_version(void) { return 9; }
