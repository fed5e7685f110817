"""keras_initzoo: choose, apply and check weight initialization in Keras 3.

Importing the package registers every initializer with Keras, so the
``zoo_*`` aliases work wherever Keras takes an initializer::

    import keras
    import keras_initzoo as kiz

    keras.layers.Dense(64, activation="relu", kernel_initializer="zoo_he")
"""

__version__ = "0.1.0"
