"""The machine and software a measurement runs on, detected at run time (never typed in).

Shared by bench (timings are meaningless without the machine) and report (provenance).
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from analyzer.errors import InputError
from analyzer.records import Environment

__all__ = ["cpu_name", "detect_environment", "device_name", "pick_device"]


def pick_device(device: str | None = None) -> str:
    """The device to run on: the given one once checked, else the GPU when torch sees one,
    else the CPU. A device torch cannot use is an input error, not a traceback later."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise InputError(None, f"--device must be cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(None, f"--device {device}: no CUDA device is available to torch here")
    return device


def device_name(device: str) -> str:
    """What a record calls the device: the GPU's name, or "cpu"."""
    import torch

    return torch.cuda.get_device_name(device) if device.startswith("cuda") else device


def detect_environment(device: str = "cpu") -> Environment:
    """Describe this process's machine; `device` is "cpu" or a torch device such as "cuda"."""
    import torch

    gpu, driver, clocks = "", "", ""
    if device != "cpu" and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(torch.device(device))
        driver, clocks = _nvidia_smi()
    return Environment(
        python=platform.python_version(),
        platform=platform.platform(),
        cpu=cpu_name(),
        cores=os.cpu_count() or 0,
        torch=torch.__version__,
        # the installed distribution's version, without importing it (a second of imports
        # where nothing else needs transformers: analyze, audit, a collection's workers)
        transformers=metadata.version("transformers"),
        device=gpu or "cpu",
        gpu_driver=driver,
        gpu_clocks=clocks,
    )


def cpu_name() -> str:
    """The CPU model as the OS reports it (Linux /proc/cpuinfo, else `platform`)."""
    cpuinfo = Path("/proc/cpuinfo")
    if sys.platform.startswith("linux") and cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def _nvidia_smi() -> tuple[str, str]:
    """Driver version and SM / memory clocks of the first GPU, or blanks without nvidia-smi."""
    query = "driver_version,clocks.sm,clocks.mem"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "", ""
    fields = [f.strip() for f in out.splitlines()[0].split(",")] if out.strip() else []
    if len(fields) != 3:
        return "", ""
    return fields[0], f"SM {fields[1]}, memory {fields[2]}"
