"""Driving-QA head: a monolithic LLM with visual experts (Mono-InternVL style).

Docs: docs/drive_qa.md."""
from .configuration import MonoDriveConfig
from .modeling import MonoDriveForCausalLM, MonoDriveModel
from .processing import (DRIVE_QA_SPECIAL_TOKENS, DriveQAProcessor, add_drive_tokens,
                         load_drive_tokenizer, train_drive_tokenizer)
from .training import set_trainable, stage_patterns
from .qa_model import DriveQADataPreprocessor, DriveQAModel

__all__ = ['DRIVE_QA_SPECIAL_TOKENS', 'DriveQADataPreprocessor', 'DriveQAModel', 'DriveQAProcessor',
           'MonoDriveConfig', 'MonoDriveForCausalLM', 'MonoDriveModel', 'add_drive_tokens',
           'load_drive_tokenizer', 'set_trainable', 'stage_patterns', 'train_drive_tokenizer']
