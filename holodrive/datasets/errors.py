"""Data errors that name the offending file and say how to fix it.

Every loader in :mod:`holodrive.datasets` turns a broken input into exactly one of
these exceptions instead of a traceback deep inside numpy, mmcv or the nuScenes
devkit. All of them are ``ValueError`` subclasses; the missing-file ones are also
``FileNotFoundError`` so ``except OSError`` code keeps working.

Attributes shared by all of them: ``path`` (the file or folder at fault, a str) and
``hint`` (what to do about it). ``str(err)`` reads ``"<problem>: <path>\\n  fix: <hint>"``.
"""
from typing import Optional


class HoloDriveDataError(ValueError):
    """Base class: a data file or folder is missing or malformed."""

    def __init__(self, problem: str, path, hint: Optional[str] = None):
        self.problem = problem
        self.path = str(path)
        self.hint = hint
        msg = f'{problem}: {self.path}'
        if hint:
            msg += f'\n  fix: {hint}'
        super().__init__(msg)

    def __reduce__(self):  # keep the three fields through DataLoader workers
        return (type(self), (self.problem, self.path, self.hint))


class NuScenesTableError(HoloDriveDataError):
    """A nuScenes release folder or one of its JSON tables is missing or malformed."""


class InfoFileError(HoloDriveDataError):
    """An mmdet3d info ``.pkl`` (or its ``.stream`` cache) is missing or malformed."""


class CorruptSampleError(HoloDriveDataError):
    """A sensor file exists but its content is unusable (bad size, NaN, undecodable)."""


class MissingSampleError(HoloDriveDataError, FileNotFoundError):
    """A sensor file named by the info records does not exist."""

    def __init__(self, problem: str, path, hint: Optional[str] = None):
        HoloDriveDataError.__init__(self, problem, path, hint)
        self.filename = self.path

    def __str__(self):
        return self.args[0]


class DriveQAFileError(HoloDriveDataError):
    """A driving-QA file (NuScenes-QA / DriveLM JSON, see :mod:`holodrive.datasets.drive_qa`)
    is missing or malformed, or names a sample its info file does not hold.

    Unlike the others its message is ONE line, ``"<path>: <problem>; fix: <hint>"``, with the
    offending key / index in ``problem`` (the QA files are big and a model dataset reports
    the error in a log line).
    """

    def __init__(self, problem: str, path, hint: Optional[str] = None):
        HoloDriveDataError.__init__(self, problem, path, hint)
        self.args = (f'{self.path}: {problem}' + (f'; fix: {hint}' if hint else ''),)
