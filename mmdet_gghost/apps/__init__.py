"""Applications: the top layer of the package, above :mod:`..benchmark`.

They combine everything below (train, evaluate, time, plot) into one job
and are driven by a script in ``tools/`` (``make demo`` is
``tools/demo.py`` over :func:`.demo.run_demo`).  Nothing in the library
imports them; they find configs through the package's installed configs
(:func:`mmdet_gghost.config_bases.package_configs_dir`).
"""
