from setuptools import find_packages, setup

setup(
    name="ssd_zoo",
    version="0.1.0",
    description="SSD (Single Shot MultiBox) detectors in PyTorch with weights converted "
                "exactly from Gluon-CV and Caffe SSD",
    packages=find_packages(include=["ssd_zoo", "ssd_zoo.*", "converters", "converters.*"]),
    package_data={"ssd_zoo": ["assets/*", "csrc/*.cpp"]},
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.1", "torchvision>=0.16", "numpy", "pillow", "safetensors", "requests",
        "tqdm", "filelock", "opencv-python-headless<5",
    ],
    extras_require={
        "eval": ["pycocotools"],
        "export": ["onnx", "onnxruntime"],
        "train": ["tensorboard"],
        "caffe": ["protobuf"],
    },
)
