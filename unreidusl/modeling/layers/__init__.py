from .classifier import ClusterClassifier
from .pooling import GeneralizedMeanPooling, PartPooling, build_pooling
from .resizable import ResizableModule

__all__ = ["ClusterClassifier", "GeneralizedMeanPooling", "PartPooling", "build_pooling", "ResizableModule"]
