"""The speed benchmark runs each tool as the user would: the command lines it times."""

from pathlib import Path

from fourfold.faceblur import bench
from fourfold.faceblur.tool import cli


def test_each_method_is_timed_through_the_real_command_line():
    clip, out = Path("clip.mp4"), Path("out.mp4")
    deface = bench.command("deface", clip, out)
    assert deface[1:3] == ["-m", "deface.deface"] and "--backend" in deface
    small = ["--method", "yolo", "--small-faces"]
    for tool, flags in (("yolo", ["--method", "yolo"]), ("yolo_small", small)):
        cmd = bench.command(tool, clip, out)
        assert cmd[1:3] == ["-m", "fourfold.faceblur.tool.cli"]
        args = cli.parser().parse_args(cmd[3:])  # the tool's own parser accepts the line
        assert cmd[cmd.index("--method") : cmd.index("--method") + len(flags)] == flags
        assert args.small_faces == (tool == "yolo_small") and args.method == "yolo" and args.overwrite
