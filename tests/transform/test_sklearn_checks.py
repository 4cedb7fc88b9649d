"""scikit-learn's own estimator checks on Whitening (STYLE §1: estimators follow scikit-learn).

`parametrize_with_checks` runs the ~40 checks sklearn applies to its own transformers: fit returns self, clone and
get_params round-trip, n_features_in_, errors on NaN/inf/sparse/complex/empty/1-D input and on a feature-count
mismatch (ValueError with sklearn's messages), idempotent fit, pickling, dtype handling. Whitening declares
`preserves_dtype = ["float32"]` (transform always returns float32, as every semspace vector), so the dtype check
tests float32 in → float32 out instead of sklearn's default float64.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from semspace.transform import Whitening


@parametrize_with_checks([Whitening()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
