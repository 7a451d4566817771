"""ssd_zoo: SSD detectors in PyTorch with weights converted exactly from Gluon-CV and Caffe."""
__version__ = "0.1.0"
