"""cffnn.check_gradient: compare the compiled gradient with central finite differences."""
import numpy as np

from cffnn.network import Network


def check_gradient(net, X, Y, alpha=0.0, sample_weight=None, eps=None):
    """Largest error of ``net.loss_and_gradient`` against central finite differences.

    Returns max_i |g_i - d_i| / max_i |d_i|, the relative error in the max norm, where g
    is the compiled gradient in the network's own dtype and d_i = (L(p + h e_i) -
    L(p - h e_i)) / (2 h) is computed in float64 on a float64 copy of the network,
    whatever the network's dtype. Expect about 1e-9 for float64 networks and 1e-4 for
    float32 ones; far larger values mean a wrong gradient (or X near a ReLU kink).

    net : cffnn.Network;  X, Y, alpha, sample_weight : as for ``net.loss``.
    eps : finite-difference step relative to max(1, |p_i|); default cbrt(float64 eps).
    Costs 2 * net.n_params loss evaluations.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a cffnn.Network, got {type(net).__name__}")
    _, grad = net.loss_and_gradient(X, Y, alpha=alpha, sample_weight=sample_weight)

    twin = Network(net.layer_sizes, activation=list(net.activations), output=net.output,
                   loss=net.loss_name, dtype=np.float64, random_state=0)
    twin.params = net.params.astype(np.float64)
    X64, Y64, weights, inv_weight_sum, alpha_over_weight_sum = twin._check_fit_inputs(
        X, Y, alpha, sample_weight)
    params = twin.params

    def loss_at():
        return twin._compiled.loss(X64, Y64, weights, inv_weight_sum, alpha_over_weight_sum, 1)

    step_scale = np.cbrt(np.finfo(np.float64).eps) if eps is None else float(eps)
    numeric = np.empty(params.shape[0])
    for i in range(params.shape[0]):
        original = params[i]
        step = step_scale * max(1.0, abs(original))
        params[i] = original + step
        loss_plus = loss_at()
        params[i] = original - step
        loss_minus = loss_at()
        params[i] = original
        numeric[i] = (loss_plus - loss_minus) / (2 * step)
    scale = np.max(np.abs(numeric))
    error = np.max(np.abs(grad.astype(np.float64) - numeric))
    return float(error / scale) if scale > 0 else float(error)
