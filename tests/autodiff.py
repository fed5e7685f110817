"""Reference gradients from the running backend's own autodiff, independent of the library.

TensorFlow: ``tf.GradientTape``; JAX: ``jax.grad`` of ``model.stateless_call``;
PyTorch: ``torch.autograd.grad``. Each gives the gradient of ``loss_fn(y,
model(x))`` at the model's current weights, as numpy arrays in the order of
``model.trainable_variables``.
"""

from __future__ import annotations

import keras


def gradients(model, x, y, loss_fn) -> list:
    variables = model.trainable_variables
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
    elif backend == "jax":
        import jax

        others = [v.value for v in model.non_trainable_variables]
        kwargs = {"training": True} if model._call_has_training_arg else {}

        def loss_of(values):
            y_pred, _ = model.stateless_call(values, others, x, **kwargs)
            return loss_fn(y, y_pred)

        grads = jax.grad(loss_of)([v.value for v in variables])
    elif backend == "torch":
        import torch

        with torch.enable_grad():
            loss = loss_fn(y, model(x, training=True))
            grads = torch.autograd.grad(loss, [v.value for v in variables])
    else:
        raise RuntimeError(f"no reference autodiff for backend {backend!r}")
    return [keras.ops.convert_to_numpy(g) for g in grads]
