#!/usr/bin/python3
"""An RTSP server for tests and benchmarks: serves H.264 MP4 files over RTSP
with GStreamer's RTSP server (Debian: gir1.2-gst-rtsp-server-1.0, python3-gi,
gstreamer1.0-plugins-{base,good,bad}). Run it with Debian's /usr/bin/python3.

    serve.py [--tls CERT.pem KEY.pem] PORT PATH=FILE [PATH=FILE ...]

serves rtsp://127.0.0.1:PORT/PATH for each FILE, paced in real time, each
client from the start of the file (not shared); the stream ends with the
file. With `--tls` it speaks RTSPS (RTSP over TLS) with that certificate.
Prints `ready` once it listens, so a caller can wait on that line.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtspServer  # noqa: E402


def main():
    args = sys.argv[1:]
    tls = None
    if args[:1] == ["--tls"]:
        tls, args = args[1:3], args[3:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(args[0])
    if tls:
        auth = GstRtspServer.RTSPAuth()
        auth.set_tls_certificate(Gio.TlsCertificate.new_from_files(tls[0], tls[1]))
        # Anonymous clients may play; TLS is about the transport here.
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "anonymous")
        auth.set_default_token(token)
        server.set_auth(auth)
    mounts = server.get_mount_points()
    for spec in args[1:]:
        path, _, file = spec.partition("=")
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_shared(False)
        if tls:
            factory.add_role_from_structure(
                Gst.Structure.from_string(
                    "anonymous, media.factory.access=(boolean)true, "
                    "media.factory.construct=(boolean)true"
                )[0]
            )
        factory.set_launch(
            f'( filesrc location="{file}" ! qtdemux ! h264parse '
            "! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        mounts.add_factory("/" + path.strip("/"), factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args[0]}", file=sys.stderr)
        sys.exit(1)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
