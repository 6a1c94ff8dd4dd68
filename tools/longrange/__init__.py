"""Python helpers for longrange: model files for converters, fixture generators and trainers.

Scripts add the tools/ directory to sys.path and import from here, e.g.
    from longrange import safetensors
"""
