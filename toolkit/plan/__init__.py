"""Will it fit: GPU memory per GPU for a config, from the model's facts (the catalog, or
config.json and safetensors headers read from the weights). Arithmetic only: no GPU, no engine.
"""
