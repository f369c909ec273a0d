#!/usr/bin/python3
"""An RTSP server for tests and benchmarks: serves H.264 MP4 files over RTSP
with GStreamer's RTSP server (Debian: gir1.2-gst-rtsp-server-1.0, python3-gi,
gstreamer1.0-plugins-{base,good,bad}). Run it with Debian's /usr/bin/python3.

    serve.py PORT PATH=FILE [PATH=FILE ...]

serves rtsp://127.0.0.1:PORT/PATH for each FILE, paced in real time, each
client from the start of the file (not shared); the stream ends with the
file. Prints `ready` once it listens, so a caller can wait on that line.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(sys.argv[1])
    mounts = server.get_mount_points()
    for spec in sys.argv[2:]:
        path, _, file = spec.partition("=")
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_shared(False)
        factory.set_launch(
            f'( filesrc location="{file}" ! qtdemux ! h264parse '
            "! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        mounts.add_factory("/" + path.strip("/"), factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{sys.argv[1]}", file=sys.stderr)
        sys.exit(1)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
