"""Installs an npm reference package (a tokenizer's JavaScript implementation) into <build>/npm at test time,
once: the packages are references, never committed. Needs node and npm on PATH."""

import os
import shutil
import subprocess


def ensure_npm_package(build, spec, marker):
    """node_modules dir holding package `spec` (name@version), installed when <modules>/<marker> is missing."""
    modules = os.path.join(build, "npm", "node_modules")
    if os.path.exists(os.path.join(modules, marker)):
        return modules
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            raise RuntimeError(f"'{tool}' is not on PATH; the reference tokenizer {spec} needs node and npm")
    print(f"installing {spec} into {os.path.join(build, 'npm')} ...", flush=True)
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", os.path.join(build, "npm"), spec],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or not os.path.exists(os.path.join(modules, marker)):
        raise RuntimeError(f"npm install {spec} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return modules
