/* Vectorised f32 math (see vec_math.h). exp follows the classic Cephes scheme: x = n ln2 + r
 * with |r| <= ln2/2, a degree-6 minimax polynomial for e^r, and 2^n built from the exponent
 * bits in two halves so that results in the subnormal range are still right. */
#include "vec_math.h"
#include "clones.h"

#include <string.h>


static inline float bits_to_float(int32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

static inline float expf_poly(float x) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  const float max_x = 88.72283935546875f;  /* above: +inf */
  const float min_x = -103.97208404541016f; /* below: 0 */
  float xc = x > max_x ? max_x : x;
  xc = xc < min_x ? min_x : xc;
  /* n = round(x / ln2) with the 1.5 * 2^23 trick (no call, vectorises) */
  float n = (xc * log2e + 12582912.0f) - 12582912.0f;
  float r = xc - n * ln2_hi;
  r = r - n * ln2_lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  /* 2^n as 2^(n/2) * 2^(n - n/2): each half stays a normal float for n in [-150, 128] */
  int32_t ni = (int32_t)n;
  int32_t n1 = ni >> 1, n2 = ni - n1;
  float s1 = bits_to_float((n1 + 127) << 23), s2 = bits_to_float((n2 + 127) << 23);
  float y = p * s1 * s2;
  y = x > max_x ? __builtin_inff() : y;
  y = x < min_x ? 0.0f : y;
  y = x != x ? x : y;
  return y;
}

VL_CLONES void vl_vec_exp_f32(float *out, const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = expf_poly(x[i]);
}

VL_CLONES void vl_vec_sigmoid_f32(float *out, const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    /* exp of -|x| keeps the quotient accurate on both sides */
    float ax = x[i] < 0 ? -x[i] : x[i];
    float e = expf_poly(-ax);
    float s = 1.0f / (1.0f + e);
    float y = x[i] >= 0 ? s : e * s;
    out[i] = x[i] != x[i] ? x[i] : y;
  }
}
