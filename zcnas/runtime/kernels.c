/* zcnas's CPU kernels: train-mode batch norm (see zcnas/runtime/kernels.py). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif
#define BLOCK 64   /* channels-last: rows summed in float32 before joining the float64 total */
#define CHUNK 1024 /* NCHW: values of a plane summed in float32 lanes before joining it */

typedef float v8f __attribute__((vector_size(32)));

static inline v8f load8(const float *p) {
  v8f v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline double total8(v8f v) {
  double t = 0;
  for (int l = 0; l < 8; l++) t += v[l];
  return t;
}

/* A batch of n images of c channels of hw pixels, channels-last (n*hw rows of c) or NCHW
   (n*c planes of hw). Per channel j, with d = x - k[j] (k: a shift): s1 += sum(d),
   s2 += sum(d * d). Partial sums are float32, over BLOCK rows (channels-last) or over 16
   lanes of up to CHUNK values of a plane (NCHW), then float64. */
static inline void stats_cl(const float *restrict x, int64_t m, int64_t c,
                            const float *restrict k, double *restrict s1,
                            double *restrict s2, float *restrict p1, float *restrict p2) {
  for (int64_t i0 = 0; i0 < m; i0 += BLOCK) {
    int64_t i1 = i0 + BLOCK < m ? i0 + BLOCK : m;
    memset(p1, 0, c * sizeof(float));
    memset(p2, 0, c * sizeof(float));
    for (int64_t i = i0; i < i1; i++) {
      const float *restrict r = x + i * c;
      for (int64_t j = 0; j < c; j++) { float d = r[j] - k[j]; p1[j] += d; p2[j] += d * d; }
    }
    for (int64_t j = 0; j < c; j++) { s1[j] += p1[j]; s2[j] += p2[j]; }
  }
}

static inline void stats_nchw(const float *restrict x, int64_t n, int64_t c, int64_t hw,
                              const float *restrict k, double *restrict s1,
                              double *restrict s2) {
  for (int64_t img = 0; img < n; img++) {
    for (int64_t j = 0; j < c; j++) {
      const float *restrict r = x + (img * c + j) * hw;
      float kj = k[j];
      v8f kv = {kj, kj, kj, kj, kj, kj, kj, kj};
      double t1 = 0, t2 = 0;
      int64_t i = 0;
      while (i + 16 <= hw) {
        int64_t end = i + CHUNK < hw ? i + CHUNK : hw;
        v8f a1 = {0}, a2 = {0}, b1 = {0}, b2 = {0};
        for (; i + 16 <= end; i += 16) {
          v8f d0 = load8(r + i) - kv, d1 = load8(r + i + 8) - kv;
          a1 += d0;
          a2 += d0 * d0;
          b1 += d1;
          b2 += d1 * d1;
        }
        t1 += total8(a1 + b1);
        t2 += total8(a2 + b2);
      }
      for (; i < hw; i++) { float d = r[i] - kj; t1 += d; t2 += d * d; }
      s1[j] += t1;
      s2[j] += t2;
    }
  }
}

/* Forward: y = (x - mean) * invstd * w + b as x * alpha + beta. w, b may be NULL.
   mean, invstd: c floats out; var: c doubles out (biased). Returns 1 when out of memory. */
CLONES int bn_forward(const float *x, float *y, int64_t n, int64_t c, int64_t hw, int cl,
                      double eps, const float *w, const float *bias, float *mean,
                      float *invstd, double *var) {
  double *s1 = calloc(c, sizeof(double)), *s2 = calloc(c, sizeof(double));
  float *k = malloc(c * sizeof(float)), *p1 = malloc(c * sizeof(float));
  float *p2 = malloc(c * sizeof(float)), *alpha = malloc(c * sizeof(float));
  float *beta = malloc(c * sizeof(float));
  int fail = !s1 || !s2 || !k || !p1 || !p2 || !alpha || !beta;
  if (!fail) {
    /* the shift: each channel's mean over its first BLOCK rows (channels-last) or its
       first image's plane (NCHW), so that one outlying first value cannot make the
       variance cancel away */
    int64_t first = cl ? (n * hw < BLOCK ? n * hw : BLOCK) : hw;
    for (int64_t j = 0; j < c; j++) {
      double t = 0;
      for (int64_t i = 0; i < first; i++) t += cl ? x[i * c + j] : x[j * hw + i];
      k[j] = (float)(t / first);
    }
    if (cl) stats_cl(x, n * hw, c, k, s1, s2, p1, p2);
    else stats_nchw(x, n, c, hw, k, s1, s2);
    double m = (double)n * hw;
    for (int64_t j = 0; j < c; j++) {
      double dm = s1[j] / m, v = s2[j] / m - dm * dm;
      if (v < 0) v = 0;
      mean[j] = (float)(k[j] + dm);
      var[j] = v;
      invstd[j] = (float)(1.0 / sqrt(v + eps));
      alpha[j] = w ? invstd[j] * w[j] : invstd[j];
      beta[j] = (bias ? bias[j] : 0.f) - mean[j] * alpha[j];
    }
    if (cl) {
      for (int64_t i = 0; i < n * hw; i++) {
        const float *r = x + i * c;
        float *o = y + i * c;
        for (int64_t j = 0; j < c; j++) o[j] = r[j] * alpha[j] + beta[j];
      }
    } else {
      for (int64_t img = 0; img < n; img++)
        for (int64_t j = 0; j < c; j++) {
          const float *r = x + (img * c + j) * hw;
          float *o = y + (img * c + j) * hw, a = alpha[j], b = beta[j];
          for (int64_t i = 0; i < hw; i++) o[i] = r[i] * a + b;
        }
    }
  }
  free(s1); free(s2); free(k); free(p1); free(p2); free(alpha); free(beta);
  return fail;
}

/* Backward of the forward above, channels-last only, at g (laid out as x): gx, and gw, gb
   (c floats out). gx = (g - sum(g)/M - (x - mean) k) invstd w, k = sum(g (x - mean))
   invstd^2 / M (torch's formula); both sums in one read of g and x, blocked as the
   statistics. w may be NULL. Returns 1 when out of memory. */
CLONES int bn_backward(const float *restrict g, const float *restrict x, float *restrict gx,
                       int64_t m, int64_t c, const float *restrict mean,
                       const float *restrict invstd, const float *restrict w,
                       float *restrict gw, float *restrict gb) {
  double *s1 = calloc(c, sizeof(double)), *s2 = calloc(c, sizeof(double));
  float *p1 = malloc(c * sizeof(float)), *p2 = malloc(c * sizeof(float));
  float *a = malloc(c * sizeof(float)), *kk = malloc(c * sizeof(float));
  float *gm = malloc(c * sizeof(float));
  int fail = !s1 || !s2 || !p1 || !p2 || !a || !kk || !gm;
  if (!fail) {
    for (int64_t i0 = 0; i0 < m; i0 += BLOCK) {
      int64_t i1 = i0 + BLOCK < m ? i0 + BLOCK : m;
      memset(p1, 0, c * sizeof(float));
      memset(p2, 0, c * sizeof(float));
      for (int64_t i = i0; i < i1; i++) {
        const float *restrict r = x + i * c, *restrict q = g + i * c;
        for (int64_t j = 0; j < c; j++) { p1[j] += q[j]; p2[j] += (r[j] - mean[j]) * q[j]; }
      }
      for (int64_t j = 0; j < c; j++) { s1[j] += p1[j]; s2[j] += p2[j]; }
    }
    for (int64_t j = 0; j < c; j++) {
      float sum_g = (float)s1[j], dotp = (float)s2[j];
      gb[j] = sum_g;
      gw[j] = dotp * invstd[j];
      kk[j] = dotp * invstd[j] * invstd[j] / m;
      gm[j] = sum_g / m;
      a[j] = invstd[j] * (w ? w[j] : 1.f);
    }
    for (int64_t i = 0; i < m; i++) {
      const float *restrict r = x + i * c, *restrict q = g + i * c;
      float *restrict o = gx + i * c;
      for (int64_t j = 0; j < c; j++) o[j] = (q[j] - gm[j] - (r[j] - mean[j]) * kk[j]) * a[j];
    }
  }
  free(s1); free(s2); free(p1); free(p2); free(a); free(kk); free(gm);
  return fail;
}
