"""The project's exceptions: one base class, so the CLI can tell a user error from a bug.

Every error a user can cause with bad input (a file, an argument, a missing measurement) is an
:class:`HwlatError`; the CLI prints it as one line and exits 2. Anything else is a bug and keeps its
traceback. Subclasses that also derive from a builtin (``ValueError``) keep ``except ValueError``
callers working.
"""

from __future__ import annotations


class HwlatError(Exception):
    """Base class of every user-facing hwlat error."""


class InvalidArchError(HwlatError, ValueError):
    """An architecture that cannot exist: names the block and field (``block 3.stride: ...``)."""


class MissingEntryError(HwlatError):
    """A lookup table or store has no entry for a piece that a prediction needs; names the piece."""


class StoreError(HwlatError):
    """A measurement store that cannot be used: foreign, newer schema, damaged, not writable."""


class FileFormatError(HwlatError, ValueError):
    """A file that is not what the command expects (predictor, history, bundle, table); names it."""


class DeviceMismatchError(HwlatError, ValueError):
    """A predictor or store used for a device or runtime other than its own."""


class EmulatedDeviceError(DeviceMismatchError):
    """Training data measured under a CPU emulator (qemu-user, an Android emulator): its timings are
    no device's, so predictors refuse it unless asked explicitly (``allow_emulated=True``)."""


class DeviceNotFoundError(HwlatError, ValueError):
    """No device, or more than one, matches a ``--device`` reference; the message lists them."""


class TableError(FileFormatError):
    """A latency table that cannot be imported; the message names the file, line and column."""


class UnstableWarning(UserWarning):
    """Training rows whose repeats disagree by more than the store's unstable threshold."""


class ExtrapolationWarning(UserWarning):
    """A prediction outside what the predictor was fitted on (names what: a kernel size or an
    activation never measured, a resolution or width far outside the training range)."""


class ClusterError(HwlatError):
    """A Ray cluster that cannot be used: Ray not installed, address unreachable, a device that no
    worker offers, a host offering more measuring slots than allowed; names the address or device."""


class PhoneError(HwlatError):
    """A phone that cannot be measured over adb: no ``adb``, no device, several devices and no
    serial, a device unauthorized or offline or unplugged, a ``benchmark_model`` binary missing or
    not executable; names the device and what to do."""


class UnsupportedGraphError(HwlatError, ValueError):
    """A model file (ONNX, TFLite) whose graph the IR cannot describe: names the first node it cannot
    place, its op and input shapes, and what the IR lacks."""
