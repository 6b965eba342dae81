"""The ROS-free core imports in a Python where importing rclpy is impossible."""
import subprocess
import sys
import textwrap

CORE = [
    "crossmodal_ros",
    "crossmodal_ros.modalities",
    "crossmodal_ros.paths",
    "crossmodal_ros.codecs",
    "crossmodal_ros.data",
    "crossmodal_ros.data.digits",
    "crossmodal_ros.data.build_digits",
    "crossmodal_ros.data.mhd",
    "crossmodal_ros.data.features",
]
OPTIONAL = [
    "crossmodal_ros.models",
    "crossmodal_ros.engine",
    "crossmodal_ros.checkpoint",
    "crossmodal_ros.training",
    "crossmodal_ros.training.train",
    "crossmodal_ros.evaluation",
]

SCRIPT = textwrap.dedent(
    """
    import importlib, importlib.util, sys

    class BlockRos:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("rclpy", "rosidl_runtime_py", "rosbag2_py"):
                raise ImportError(f"{name} is blocked: the core must not import ROS")
            return None

    sys.meta_path.insert(0, BlockRos())
    core, optional = sys.argv[1].split(","), sys.argv[2].split(",")
    for name in core:
        importlib.import_module(name)
    skipped = []
    for name in optional:
        parent = name.rpartition(".")[0]
        if parent and importlib.util.find_spec(parent) is None or importlib.util.find_spec(name) is None:
            skipped.append(name)
            continue
        importlib.import_module(name)
    assert not any(m.split(".")[0] == "rclpy" for m in sys.modules)
    print("ok", "skipped:", skipped)
    """
)


def test_core_imports_without_rclpy():
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(CORE), ",".join(OPTIONAL)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith("ok")


def test_blocker_really_blocks():
    """The hook used above makes `import rclpy` fail (so the test above can fail)."""
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT, "rclpy", ""],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode != 0 and "blocked" in res.stderr
