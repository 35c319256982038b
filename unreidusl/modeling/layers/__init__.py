from .classifier import ClusterClassifier
from .pooling import GeneralizedMeanPooling, PartPooling, build_pooling
from .resizable import resize_like_checkpoint

__all__ = ["ClusterClassifier", "GeneralizedMeanPooling", "PartPooling", "build_pooling", "resize_like_checkpoint"]
