/* The vectorisable helpers in kernels.h against libm in double precision:
 * ll_expf (relative error, clamping, the extremes softmax and SiLU feed it)
 * and ll_dot. */
#include <stdint.h>

#include "kernels/kernels.h"
#include "test_util.h"

int main(void) {
    double worst = 0.0;
    float worst_x = 0.0f;
    for (float x = -87.0f; x <= 88.0f; x += 0.000731f) {
        const double ref = exp((double)x), err = fabs(ll_expf(x) - ref) / ref;
        if (!(err <= worst)) worst = err, worst_x = x;
    }
    CHECK_MSG(worst < 5e-7, "ll_expf: worst relative error %g at x = %g", worst, worst_x);
    CHECK(ll_expf(0.0f) == 1.0f);
    CHECK(isnan(ll_expf(NAN)) && isnan(ll_expf(-NAN))); /* NaN stays NaN (UBSan: no NaN-to-int conversion) */
    /* softmax of a masked or far score: tiny, finite, never negative */
    CHECK(ll_expf(-1000.0f) >= 0.0f && ll_expf(-1000.0f) < 1e-37f);
    CHECK(ll_expf(-INFINITY) >= 0.0f && ll_expf(-INFINITY) < 1e-37f);
    CHECK(isfinite(ll_expf(1000.0f)) && ll_expf(1000.0f) > 1e38f);
    /* SiLU's sigmoid at the extremes */
    CHECK(fabsf(1.0f / (1.0f + ll_expf(-100.0f)) - 1.0f) == 0.0f);
    CHECK(100.0f / (1.0f + ll_expf(100.0f)) < 1e-36f);

    float a[67], b[67];
    double ref = 0.0, mag = 0.0;
    for (int i = 0; i < 67; i++) {
        a[i] = (float)sin(i * 0.7), b[i] = (float)cos(i * 1.3);
        ref += (double)a[i] * b[i], mag += fabs((double)a[i] * b[i]);
    }
    CHECK_MSG(fabs(ll_dot(a, b, 67) - ref) <= 1e-6 * mag, "ll_dot %g against %g", ll_dot(a, b, 67), ref);
    CHECK(ll_dot(a, b, 0) == 0.0f);
    return test_summary("test_vector_math");
}
