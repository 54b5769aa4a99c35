from setuptools import find_packages, setup

setup(
    name='mmdet-gghost',
    version='0.1.0',
    description='G-GhostNet (IJCV 2022) backbones, RetinaNet configs and an '
    'FPS benchmark for mmdet and mmpretrain',
    packages=find_packages(include=['mmdet_gghost', 'mmdet_gghost.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.0',
        'mmengine>=0.10.0,<0.11',
        'mmcv>=2.0.0,<2.2.0',
        'mmdet>=3.1.0,<3.4',
        'mmpretrain>=1.1.0,<1.3',
    ],
    extras_require={
        'deploy': ['onnx>=1.15', 'onnxruntime>=1.17', 'mmdeploy>=1.3.1,<1.4'],
        'tests': ['pytest'],
    },
)
