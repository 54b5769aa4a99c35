#!/usr/bin/env python3
"""Create ``.venv`` with the pinned OpenMMLab stack and install mmdet-gghost.

Run by ``make setup`` with the system Python 3.11; uses the standard library
only. Every step first checks whether its work is already done, so a second
run on the same machine installs and builds nothing.

mmcv 2.1.0 ships only as source. Its compiled ops (``mmcv._ext``) are built
once per (mmcv, torch, python, machine) combination and the wheel is kept in
``$MMDET_GGHOST_CACHE`` (default ``~/.cache/mmdet-gghost``), outside the repo:
pip's own wheel cache is keyed by the sdist alone and would happily reuse a
wheel built against another torch.
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PINS = REPO / 'requirements' / 'pinned.txt'
TORCH_PINS = ('torch==2.14.1', 'torchvision==0.29.1')
MMCV_VERSION = '2.1.0'
# pip >= 23.1 is enough; the venv's bundled pip is used as is.
# torch 2.14 requires setuptools >= 77 and would otherwise pull the newest
# one, which has no pkg_resources (needed by mmcv's setup.py and by
# mmengine's `mmdet::` config bases): pin the range for every install.
BUILD_PINS = ('setuptools>=77,<82', 'wheel')


PROBE = '''
import importlib, importlib.metadata as m, json, pathlib
def imports(name):
    try:
        return importlib.import_module(name)
    except Exception:
        return None
package = imports("mmdet_gghost")
stack = [imports(n) for n in ("torch", "mmcv", "mmengine", "mmdet",
                              "mmpretrain", "mmdeploy", "mmcv.ops")]
print(json.dumps(dict(
    installed={d.metadata["Name"].lower().replace("_", "-"): d.version
               for d in m.distributions()},
    mmcv_ops=imports("mmcv._ext") is not None,
    package=str(pathlib.Path(package.__file__).resolve()) if package else None,
    stack=None if any(x is None for x in stack)
    else " ".join(x.__version__ for x in stack[:-1]))))
'''


class StepError(RuntimeError):
    """A set-up step failed; the message names the step and its log."""


def log(msg):
    print(f'[setup] {msg}', flush=True)


def default_cache_dir():
    return Path(os.environ.get('MMDET_GGHOST_CACHE',
                               Path.home() / '.cache' / 'mmdet-gghost'))


def mmcv_cache_key(mmcv_version, torch_version, python_version=None,
                   machine=None):
    """Directory name identifying one mmcv build.

    >>> mmcv_cache_key('2.1.0', '2.14.1', '3.11', 'x86_64')
    'mmcv-2.1.0_torch-2.14.1_py-3.11_x86_64'
    """
    python_version = python_version or '%d.%d' % sys.version_info[:2]
    machine = machine or platform.machine()
    torch_version = torch_version.split('+')[0]
    return f'mmcv-{mmcv_version}_torch-{torch_version}_py-{python_version}_{machine}'


def find_cached_wheel(cache_dir, key):
    """The cached mmcv wheel for ``key`` or ``None``."""
    folder = Path(cache_dir) / key
    wheels = sorted(folder.glob('mmcv-*.whl')) if folder.is_dir() else []
    return wheels[0] if wheels else None


def run(cmd, step, log_dir, env=None):
    """Run ``cmd``, streaming nothing but saving everything to a log file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f'{step}.log'
    with open(log_file, 'w') as fh:
        fh.write('$ ' + ' '.join(map(str, cmd)) + '\n')
        fh.flush()
        proc = subprocess.run([str(c) for c in cmd], stdout=fh,
                              stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        tail = log_file.read_text(errors='replace').splitlines()[-15:]
        raise StepError(f'step "{step}" failed (exit {proc.returncode}); '
                        f'full log: {log_file}\n  last lines:\n    ' +
                        '\n    '.join(tail))
    return log_file


class Venv:

    def __init__(self, path):
        self.path = Path(path)
        self.python = self.path / 'bin' / 'python'

    def pip(self, *args):
        return [self.python, '-m', 'pip', '--disable-pip-version-check',
                *args]

    def query(self, code):
        """Run ``code`` in the venv; return its stdout or ``None`` on error."""
        proc = subprocess.run([str(self.python), '-c', code],
                              capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def probe(self):
        """One interpreter start-up saying what :func:`setup` would check
        step by step: ``installed`` distributions, whether ``mmcv._ext``
        imports, where ``mmdet_gghost`` is imported from (``package``) and
        the ``stack``'s versions once everything imports (else ``None``)."""
        out = self.query(PROBE)
        return json.loads(out) if out else None

    def installed(self):
        out = self.query(
            'import json, importlib.metadata as m; print(json.dumps('
            '{d.metadata["Name"].lower().replace("_", "-"): d.version '
            'for d in m.distributions()}))')
        return json.loads(out) if out else {}


def unmet(pins, installed):
    """The ``name==version`` pins that ``installed`` does not satisfy."""
    missing = []
    for pin in pins:
        m = re.match(r'^([A-Za-z0-9_.\-]+)==([^\s;]+)', pin)
        if not m:
            missing.append(pin)  # ranges: let pip decide
            continue
        name = m.group(1).lower().replace('_', '-')
        if installed.get(name, '').split('+')[0] != m.group(2):
            missing.append(pin)
    return missing


def read_pins(path=PINS):
    lines = [ln.split('#')[0].strip() for ln in Path(path).read_text().splitlines()]
    return [ln for ln in lines if ln]


def write_constraints(log_dir):
    """A pip constraints file holding :data:`BUILD_PINS`' setuptools range,
    so that no later install upgrades setuptools past pkg_resources."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / 'constraints.txt'
    path.write_text(BUILD_PINS[0] + '\n')
    return path


def patch_mmcv_source(src_dir):
    """Make mmcv 2.1.0's setup.py compile with C++20 (torch >= 2.10 headers
    refuse anything older). Returns the number of flags changed."""
    setup_py = Path(src_dir) / 'setup.py'
    text = setup_py.read_text()
    new, count = re.subn(r'-std=c\+\+1[47]', '-std=c++20', text)
    if count:
        setup_py.write_text(new)
    return count


def build_mmcv_wheel(venv, out_dir, log_dir):
    """Download the mmcv sdist, patch it and build a wheel with its ops."""
    with tempfile.TemporaryDirectory(prefix='mmcv-build-') as tmp:
        tmp = Path(tmp)
        # --no-build-isolation: the sdist's metadata step imports
        # pkg_resources, which an isolated (latest) setuptools lacks.
        run(venv.pip('download', '--no-deps', '--no-binary', ':all:',
                     '--no-build-isolation', f'mmcv=={MMCV_VERSION}', '-d',
                     tmp / 'sdist'), 'mmcv-download', log_dir)
        sdist = next((tmp / 'sdist').glob('mmcv-*.tar.gz'))
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp / 'src', filter='data')
        src = next((tmp / 'src').iterdir())
        if not patch_mmcv_source(src):
            log('warning: no -std=c++17 flag found to patch in mmcv setup.py')
        env = dict(os.environ, MMCV_WITH_OPS='1', FORCE_CUDA='0',
                   MAX_JOBS=os.environ.get('MAX_JOBS', str(os.cpu_count() or 2)))
        env.pop('CUDA_HOME', None)
        # Without --no-build-isolation pip builds in a torch-less env and
        # silently produces a wheel without mmcv._ext.
        run(venv.pip('wheel', '--no-deps', '--no-build-isolation', '-w',
                     tmp / 'wheel', src), 'mmcv-build', log_dir, env=env)
        wheel = next((tmp / 'wheel').glob('mmcv-*.whl'))
        out_dir.mkdir(parents=True, exist_ok=True)
        final = out_dir / wheel.name
        shutil.copy2(wheel, final.with_suffix('.part'))
        os.replace(final.with_suffix('.part'), final)
        return final


def mmcv_problem(version, has_ops):
    """Why an installed mmcv ``version`` (``None``: not installed) will not
    do, or ``None`` if it is :data:`MMCV_VERSION` with its compiled ops
    (``mmcv._ext`` imports, which also means they link against the
    installed torch); ``has_ops`` is called only when needed."""
    if version is None:
        return 'mmcv is not installed'
    if version.split('+')[0] != MMCV_VERSION:
        return f'mmcv {version} is installed, {MMCV_VERSION} is pinned'
    if not has_ops():
        return f'mmcv {version} is installed without its compiled ops (mmcv._ext)'
    return None


def installed_mmcv_problem(venv):
    """:func:`mmcv_problem` of the venv's mmcv."""
    return mmcv_problem(venv.installed().get('mmcv'),
                        lambda: has_mmcv_ops(venv))


def build_tools_ok(installed):
    """mmcv's setup.py and mmengine's `mmdet::` config bases need
    pkg_resources, which setuptools 82 removed."""
    major = int(installed.get('setuptools', '0').split('.')[0] or 0)
    return 'wheel' in installed and 77 <= major < 82


def editable_here(installed, package):
    """mmdet-gghost is installed and imported from this checkout."""
    return (installed.get('mmdet-gghost') is not None and package is not None
            and package.startswith(str(REPO)))


def still_to_do(state):
    """What :func:`setup` would still install, build or report for a venv
    in ``state`` (:meth:`Venv.probe`); empty when the venv is ready."""
    installed = state['installed']
    todo = [] if build_tools_ok(installed) else ['build tools']
    todo += unmet((*TORCH_PINS, *read_pins()), installed)
    todo += [mmcv_problem(installed.get('mmcv'), lambda: state['mmcv_ops'])]
    if not editable_here(installed, state['package']):
        todo.append('mmdet-gghost (editable)')
    if state['stack'] is None:
        todo.append('the stack does not import')
    return [t for t in todo if t]


def ensure_mmcv(venv, cache_dir, log_dir, torch_version):
    """Keep a working installed mmcv; otherwise install it from the cache,
    building the wheel if needed.

    Returns ``(wheel_path, built)``; ``wheel_path`` is ``None`` when the
    installed mmcv was kept.
    """
    problem = installed_mmcv_problem(venv)
    if problem is None:
        log(f'mmcv: {MMCV_VERSION} with compiled ops already installed in '
            f'{venv.path}; nothing to build or install')
        return None, False
    key = mmcv_cache_key(MMCV_VERSION, torch_version)
    wheel = find_cached_wheel(cache_dir, key)
    built = False
    if wheel is None:
        log(f'mmcv: {problem}; building mmcv {MMCV_VERSION} with CPU ops '
            f'against torch {torch_version} (no cached wheel under '
            f'{cache_dir / key}); this takes ~11-25 min on 2 cores ...')
        t0 = time.time()
        wheel = build_mmcv_wheel(venv, Path(cache_dir) / key, log_dir)
        built = True
        log(f'  built {wheel.name} in {time.time() - t0:.0f}s, cached at {wheel}')
    else:
        log(f'mmcv: {problem}; installing the cached wheel {wheel}')
    run(venv.pip('install', '--no-deps', '--force-reinstall', wheel),
        'mmcv-install', log_dir)
    if not has_mmcv_ops(venv):
        raise StepError(f'mmcv installed from {wheel} has no compiled ops '
                        f'(mmcv._ext); delete {wheel.parent} and run '
                        '`make setup` again to rebuild it')
    return wheel, built


def has_mmcv_ops(venv):
    return venv.query('import mmcv._ext') is not None


def setup(venv_dir, cache_dir, log_dir):
    t_start = time.time()
    venv = Venv(venv_dir)

    def step(name):
        log(f'{name} ... ({time.time() - t_start:.0f}s elapsed)')

    if venv.python.exists():  # a warm venv: one probe, nothing else
        state = venv.probe()
        if state is not None and not still_to_do(state):
            log(f'ready in {time.time() - t_start:.0f}s, nothing to install '
                f'or build (mmcv {MMCV_VERSION} with compiled ops already '
                'installed): torch/mmcv/mmengine/mmdet/mmpretrain/mmdeploy = '
                f'{state["stack"]}')
            return
    else:
        step(f'creating virtualenv {venv.path}')
        run([sys.executable, '-m', 'venv', venv.path], 'venv', log_dir)
    installed = venv.installed()

    if not build_tools_ok(installed):
        step('installing build tools (setuptools>=77,<82, wheel)')
        run(venv.pip('install', *BUILD_PINS), 'build-tools', log_dir)
    keep_build_pins = ('-c', write_constraints(log_dir))

    missing = unmet(TORCH_PINS, installed)
    if missing:
        step(f'installing {" ".join(missing)} (from local disk, ~2-4 min)')
        run(venv.pip('install', *TORCH_PINS, *keep_build_pins), 'torch',
            log_dir)
    torch_version = venv.installed()['torch']

    pins = read_pins()
    # mmcv's wheel lists opencv/numpy requirements: install the pinned base
    # stack first so mmcv finds them satisfied.
    installed = venv.installed()
    missing = unmet(pins, installed)
    if missing:
        step(f'installing {len(missing)} pinned packages from {PINS.name}')
        run(venv.pip('install', '-r', PINS, *keep_build_pins), 'pinned',
            log_dir)

    step('mmcv')
    ensure_mmcv(venv, cache_dir, log_dir, torch_version)

    installed = venv.installed()
    editable = venv.query(
        'import mmdet_gghost, pathlib; print(pathlib.Path(mmdet_gghost.__file__).resolve())')
    if not editable_here(installed, editable):
        step('installing mmdet-gghost (editable)')
        run(venv.pip('install', '--no-deps', '--no-build-isolation', '-e', REPO),
            'editable', log_dir)

    step('checking the stack')
    check = venv.query(
        'import torch, mmcv, mmcv.ops, mmengine, mmdet, mmpretrain, mmdeploy, '
        'mmdet_gghost;'
        'print(torch.__version__, mmcv.__version__, mmengine.__version__, '
        'mmdet.__version__, mmpretrain.__version__, mmdeploy.__version__)')
    if check is None:
        raise StepError('the stack does not import; run '
                        f'{venv.python} -c "import mmdet, mmpretrain, '
                        'mmdeploy, mmdet_gghost" to see why')
    log(f'ready in {time.time() - t_start:.0f}s: torch/mmcv/mmengine/mmdet/'
        f'mmpretrain/mmdeploy = {check}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--venv', default=REPO / '.venv', type=Path)
    parser.add_argument('--cache-dir', default=default_cache_dir(), type=Path)
    parser.add_argument('--log-dir', default=REPO / 'work_dirs' / 'setup-logs',
                        type=Path)
    args = parser.parse_args(argv)
    if sys.version_info[:2] != (3, 11):
        log(f'error: run this with Python 3.11 (got {platform.python_version()}); '
            'the pinned torch wheels exist for 3.11 only')
        return 2
    try:
        setup(args.venv, args.cache_dir, args.log_dir)
    except StepError as exc:
        log(f'error: {exc}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
