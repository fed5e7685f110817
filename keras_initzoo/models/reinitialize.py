"""Re-draw every kernel of a built model with the fans its layer gives it."""

from __future__ import annotations

from typing import Any

import keras

from keras_initzoo._records import refuse_if_parametrized
from keras_initzoo._validation import check_biases
from keras_initzoo.initializers.variance_scaling import TorchDefault
from keras_initzoo.models import torch_defaults
from keras_initzoo.models.draw import draw_kernel, resolve
from keras_initzoo.models.recipes import apply_recipe
from keras_initzoo.models.report import Report
from keras_initzoo.models.walk import KernelSite, Skip, walk

COLUMNS = ("path", "layer", "shape", "fan_in", "fan_out", "target var", "actual var", "note")
# With torch's rules: the bound each draw stays within, and PyTorch's fans.
TORCH_COLUMNS = (*COLUMNS[:-1], "bound", "note")


def _seed_generator(init: keras.initializers.Initializer) -> keras.random.SeedGenerator:
    """The stream ``init`` draws from, which torch's rules then draw from too."""
    generator = getattr(init, "seed_generator", None)
    if generator is None:
        seed = getattr(init, "seed", None)
        generator = seed if isinstance(seed, keras.random.SeedGenerator) else None
    return generator or keras.random.SeedGenerator()


def _kernel_row(site: KernelSite, target: float | None, actual: float) -> dict[str, Any]:
    return {
        "path": site.path,
        "layer": type(site.layer).__name__,
        "shape": site.shape,
        "fan_in": site.fan_in,
        "fan_out": site.fan_out,
        "target var": target,
        "actual var": actual,
        "note": site.note,
    }


def _torch_row(parameter: torch_defaults.TorchParameter, actual: float) -> dict[str, Any]:
    draw = parameter.draw
    return {
        "path": parameter.path,
        "layer": type(parameter.layer).__name__ if parameter.layer is not None else "—",
        "shape": tuple(parameter.variable.shape),
        "fan_in": draw.fan_in,
        "fan_out": draw.fan_out,
        "target var": draw.variance,
        "actual var": actual,
        "bound": draw.bound,
        "note": parameter.note,
    }


def reinitialize(
    model: keras.layers.Layer,
    initializer: Any = None,
    *,
    recipe: str | None = None,
    skip: Skip = None,
    biases: bool | str = False,
    data: Any = None,
    seed: int | None = None,
) -> Report:
    """Re-draws every kernel of a built ``model`` in place, each with its true fans.

    :func:`~keras_initzoo.models.walk.walk` finds the kernels and their fans
    (depthwise, separable, grouped and transposed convolutions, ``EinsumDense``
    and attention, embeddings, recurrent gates). A fan-scaled initializer
    (any :class:`VarianceScaling`, Keras' ``HeNormal`` and the like included)
    then draws with variance ``scale / fan`` for those fans, whatever axes it
    was built with: ``zoo_he`` gives a grouped ``k x k`` convolution
    ``2 / (k**2 C / groups)`` and a depthwise one ``2 / k**2``. Other
    initializers draw on the kernel's shape, one block at a time for stacked
    gates and groups (``zoo_orthogonal`` makes each LSTM gate's
    ``(units, units)`` recurrent block orthogonal). Each kernel gets its own
    draw; integer seeds reproduce them all.

    PyTorch's defaults: ``initializer="zoo_torch"`` (a
    :class:`~keras_initzoo.TorchDefault`) draws each kernel as the layer's
    ``torch.nn`` counterpart draws its weight (``U[-1/sqrt(fan_in),
    1/sqrt(fan_in)]`` with PyTorch's ``fan_in`` for ``Dense`` and the
    convolutions, ``N(0, 1)`` for embeddings, ``U[-1/sqrt(units),
    1/sqrt(units)]`` for recurrent kernels, Xavier uniform over attention's
    stacked in-projection); ``biases="torch"`` draws the biases as torch does
    and sets normalization scales (and moving variances) to one, offsets (and
    moving means) to zero and ``PReLU``'s slope to 0.25, whatever the
    initializer, so ``reinitialize(model, "zoo_he", biases="torch")`` gives He
    kernels with torch's biases. The rules and their sources are
    :data:`keras_initzoo.models.torch_defaults.RULES`; an LSTM's
    ``unit_forget_bias`` is overridden (its forget gate's bias is drawn as
    the others), while the layer's config keeps the flag. The report then
    has PyTorch's fans and each draw's bound.

    Examples:
        >>> model = keras.Sequential(
        ...     [keras.Input((16,)), keras.layers.Dense(256, name="hidden")], name="net")
        >>> row = reinitialize(model, "zoo_he")[0]
        >>> row["path"], row["fan_in"], round(row["target var"], 6)
        ('net/hidden/kernel', 16, 0.125)
        >>> abs(row["actual var"] / row["target var"] - 1) < 0.15   # 4096 draws: 2.2 % std error
        True
        >>> kernel, bias = reinitialize(model, "zoo_torch", biases="torch")
        >>> bias["path"], bias["bound"]   # torch's nn.Linear(16, 256): U[-1/4, 1/4]
        ('net/hidden/bias', 0.25)

    Args:
        model: a built ``keras.Model`` or layer.
        initializer: anything :func:`keras_initzoo.get` accepts: an alias, a
            class name, a config dict or an instance (Keras' own too); None
            means ``"zoo_he"``.
        recipe: instead of ``initializer``, a deep-residual recipe by name
            (``"fixup"``, ``"skipinit"``/``"rezero"``, ``"gpt2"``,
            ``"megatron"``, ``"olmo_mitchell"``, ``"t_fixup"``, ``"deepnorm"``,
            ``"nf"``), applied through the residual structure the model's
            forward pass shows (:mod:`keras_initzoo.models.recipes`).
        skip: layers to leave as they are, as in
            :func:`~keras_initzoo.models.walk.walk`.
        biases: ``False`` leaves the biases as they are, ``True`` sets every
            bias to zero, ``"torch"`` draws them (and normalization
            parameters) as ``torch.nn`` does.
        data: with ``recipe``, the batch the structure is found on (default:
            a synthetic batch shaped like the model's input).
        seed: with ``recipe``, an integer seed for its draws.

    Returns:
        A :class:`Report` with one row per kernel (path, layer class, shape,
        fans of one block, target and actual variance, the fan rule), with
        ``biases="torch"`` one per bias and normalization parameter too, and
        a note per layer whose variables were left alone, and why.
    """
    if recipe is not None:
        if initializer is not None:
            raise ValueError(
                "`initializer` and `recipe` are exclusive: a recipe draws every kernel by its "
                f"paper's rule; received initializer={initializer!r} and recipe={recipe!r}."
            )
        if skip is not None or biases is not False:
            raise ValueError(
                "`skip` and `biases` do not apply with `recipe` (a recipe sets the biases it "
                f"names); received skip={skip!r}, biases={biases!r}."
            )
        return apply_recipe(model, recipe, data, seed=seed)
    if data is not None or seed is not None:
        raise ValueError(
            "`data` and `seed` go with `recipe=`; give the initializer its own seed "
            f"(kiz.HeNormal(seed=1)); received data={type(data).__name__}, seed={seed!r}."
        )
    initializer = "zoo_he" if initializer is None else initializer
    biases = check_biases(biases)
    init = resolve(initializer)
    found = walk(model, skip=skip)
    torch_kernels = isinstance(init, TorchDefault)
    seed = _seed_generator(init)
    refuse_if_parametrized((site.variable for site in found.kernels), "reinitialize", model)
    rows = []
    if torch_kernels:  # each kernel as its layer's torch.nn counterpart draws its weight
        for parameter in torch_defaults.kernel_parameters(model, found):
            rows.append(_torch_row(parameter, parameter.assign(seed)))
    else:
        rows.extend(_kernel_row(site, *draw_kernel(site, init)) for site in found.kernels)
    left_alone = found.left_alone
    if biases == "torch":
        drawn = set()
        for parameter in torch_defaults.other_parameters(model, found):
            rows.append(_torch_row(parameter, parameter.assign(seed)))
            drawn.add((id(parameter.layer), parameter.variable.name))
        # A normalization's scale and offset are no longer left alone.
        left_alone = [
            entry
            for entry in left_alone
            if not all((id(entry.layer), name) in drawn for name in entry.variables)
        ]
    notes = [str(entry) for entry in left_alone]
    if biases is True:
        for variable in found.biases:
            variable.assign(keras.ops.zeros(variable.shape, dtype=variable.dtype))
        notes.append(f"{len(found.biases)} biases set to zero")
    name = initializer if isinstance(initializer, str) else type(init).__name__
    torch_rules = torch_kernels or biases == "torch"
    columns = TORCH_COLUMNS if torch_rules else COLUMNS
    return Report(rows, columns, title=f"reinitialize: {name}", notes=notes)
