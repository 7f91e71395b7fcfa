"""Audio and subtitle streams into outputs: the muxer decides what is copied, the rest is
re-encoded in time, and ADTS AAC from MPEG-TS goes into MP4 and MOV unchanged."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from p3m_live.video.frames import Frame, Layout, planes_to_rgb
from p3m_live.video.sinks import FileSink, partial_path
from p3m_live.video.tracks import encoder_layout, encoder_rate, muxer_takes
from tests.media import audio_onset, audio_samples, make_clip, probe, shapes_frame

LAYOUT = Layout(96, 64, "rgb", True, "bt601")
ONSET = 0.2  # seconds: the tone starts here, silence before


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """One clip per audio kind users bring, each with a tone that starts at ONSET."""
    d = tmp_path_factory.mktemp("tracks")
    made = {
        "flac.mkv": {"audio_codec": "flac", "audio_rate": 16000},
        "opus.mkv": {"audio_codec": "libopus", "audio_rate": 48000},
        "aac44.mp4": {"audio_rate": 44100},
        "aac.mp4": {"audio_rate": 48000},
        "aac.ts": {"audio_rate": 48000},  # ADTS, as camcorders and broadcasts record it
        "ac3.mkv": {"audio_codec": "ac3", "audio_rate": 48000, "audio_layout": "5.1(side)"},  # a DVD's, a TV's
        "pcm.mov": {"audio_codec": "pcm_s16le", "audio_rate": 48000},  # a camcorder's, a microphone's
        "mp3.mkv": {"audio_codec": "libmp3lame", "audio_rate": 48000},  # (decoded by FFmpeg's "mp3float")
    }
    return {name: make_clip(d / name, frames=15, audio_onset=ONSET, **kw) for name, kw in made.items()}


def _stream(path):
    c = av.open(str(path))
    return c, c.streams.audio[0]


@pytest.mark.parametrize(
    "clip, fmt, takes",
    [
        ("flac.mkv", "mp4", True),
        ("flac.mkv", "mov", False),  # listed by MOV, refused by its muxer (MP4 only)
        ("opus.mkv", "mov", False),
        ("aac.mp4", "mpegts", True),  # MPEG-TS lists no codecs at all
        ("aac.mp4", "webm", False),
        ("aac.ts", "mp4", True),
        ("aac.mp4", "rtsp", True),  # asked of RTP, which carries each of its streams
        ("flac.mkv", "rtsp", False),  # RTP has no FLAC payload
    ],
)
def test_the_muxer_itself_says_what_it_takes(clips, clip, fmt, takes):
    c, stream = _stream(clips[clip])
    with c:
        assert muxer_takes(fmt, stream) is takes


def test_an_encoder_gets_a_rate_it_has():
    assert encoder_rate("libopus", 44100) == 48000  # Opus has no 44.1 kHz
    assert encoder_rate("libopus", 16000) == 16000
    assert encoder_rate("libopus", 96000) == 48000  # nothing higher: its highest
    assert encoder_rate("aac", 44100) == 44100
    assert encoder_rate("pcm_s16le", 44100) == 44100 and encoder_rate("pcm_s16le", 44100, "mxf") == 48000


def test_an_encoder_gets_a_layout_it_has():
    """Asked of the real encoders: Opus has 5.1 and 7.1 but not AC-3's 5.1(side); MP2 has no
    more than stereo; AAC takes 5.1(side) as it is."""
    assert encoder_layout("libopus", 48000, "5.1(side)") == "5.1"
    assert encoder_layout("libopus", 48000, "7.1") == "7.1"
    assert encoder_layout("aac", 48000, "5.1(side)") == "5.1(side)"
    assert encoder_layout("mp2", 48000, "5.1") == "stereo"


def _convert(run, clip, out, *extra):
    assert run(clip, "-o", out, "--background", "#00ff00", *extra) == 0
    assert not list(out.parent.glob("*.partial*"))
    return probe(out)


@pytest.mark.parametrize(
    "clip, suffix, codec, rate",
    [
        ("flac.mkv", ".mov", "aac", 16000),
        ("opus.mkv", ".mov", "aac", 48000),
        ("aac44.mp4", ".webm", "opus", 48000),
        ("ac3.mkv", ".webm", "opus", 48000),  # 5.1(side), which Opus does not take: as 5.1
        ("aac44.mp4", ".mxf", "pcm_s16le", 48000),  # (MXF's muxer writes 48 kHz alone)
        ("pcm.mov", ".mp4", "aac", 48000),  # (MP4's muxer takes PCM, which QuickTime cannot play)
        ("pcm.mov", ".ts", "aac", 48000),  # (nor can anything read PCM back from MPEG-TS)
        ("opus.mkv", ".flv", "aac", 48000),  # RTMP's container: AAC (FLV "takes" Opus: enhanced RTMP)
        ("flac.mkv", ".ts", "aac", 16000),  # (TS "takes" FLAC, as a stream no reader finds), not MP2
    ],
)
def test_reencoded_audio_keeps_its_place_in_time(run, clips, tmp_path, clip, suffix, codec, rate):
    """Where the container refuses the audio, it is re-encoded and still starts where it did:
    the tone's onset stays at ONSET within 3 ms (the encoder's priming is marked as before the
    start; counting samples from 0 put AAC's 1024 of them after it, 64 ms late at 16 kHz)."""
    out = tmp_path / f"out{suffix}"
    info = _convert(run, clips[clip], out)
    assert info["audio_codec"] == codec and len(info["times"]) == 15
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.sample_rate == rate
        assert c.streams.video[0].codec_context.name == ("vp9" if suffix == ".webm" else "h264")
        channels = len(c.streams.audio[0].codec_context.layout.channels)
    assert channels == (6 if clip == "ac3.mkv" else 1)
    assert audio_onset(out) == pytest.approx(ONSET, abs=0.003)
    assert audio_onset(clips[clip]) == pytest.approx(ONSET, abs=0.003)


@pytest.mark.parametrize("clip, suffix", [("pcm.mov", ".mov"), ("pcm.mov", ".mkv"), ("mp3.mkv", ".ts")])
def test_sound_is_copied_where_its_players_read_it(run, clips, tmp_path, clip, suffix):
    out = tmp_path / f"out{suffix}"
    info = _convert(run, clips[clip], out)
    assert info["audio_codec"] == probe(clips[clip])["audio_codec"]
    assert [a[2] for a in info["audio"]] == [a[2] for a in probe(clips[clip])["audio"]]  # packet for packet


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_adts_aac_from_mpeg_ts_is_copied_sample_for_sample(run, clips, tmp_path, suffix):
    """Camcorder and broadcast AAC (ADTS in MPEG-TS) into MP4 and MOV, which are written in
    fragments: the packets go through aac_adtstoasc, so nothing is re-encoded."""
    out = tmp_path / f"out{suffix}"
    info = _convert(run, clips["aac.ts"], out)
    assert info["audio_codec"] == "aac" and len(info["times"]) == 15
    np.testing.assert_array_equal(audio_samples(out), audio_samples(clips["aac.ts"]))
    assert audio_onset(out) == pytest.approx(audio_onset(clips["aac.ts"]), abs=1e-3)


def test_aac_into_mpeg_ts_is_copied(run, clips, tmp_path):
    out = tmp_path / "out.ts"
    info = _convert(run, clips["aac.mp4"], out)
    assert info["audio_codec"] == "aac"  # not re-encoded as MP2, MPEG-TS's default
    adts = 7  # the muxer frames each packet with an ADTS header; the AAC inside is the same
    assert [p[2][adts:] for p in info["audio"]] == [p[2] for p in probe(clips["aac.mp4"])["audio"]]


def test_hevc_is_tagged_hvc1_for_apple_players(run, clips, tmp_path):
    out = tmp_path / "out.mp4"
    assert run(clips["aac.mp4"], "-o", out, "--codec", "libx265") == 0
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.codec_tag == "hvc1"  # kept through the fragment rewrite
    assert b"moof" not in out.read_bytes()


def test_av1_outputs_are_finished_as_plain_files(run, clips, tmp_path, capfd):
    """libsvtav1: the fragment rewrite copies a stream whose decoder (libdav1d) is no encoder's
    name, and SVT-AV1's table of settings stays off the terminal."""
    out = tmp_path / "out.mp4"
    assert run(clips["aac.mp4"], "-o", out, "--codec", "libsvtav1") == 0
    assert b"moof" not in out.read_bytes()
    assert len(probe(out)["times"]) == 15
    assert "Svt[info]" not in capfd.readouterr().err


def _gradient(i: int) -> np.ndarray:
    """A smooth picture (edges would measure the codecs, not the colour conversion)."""
    yy, xx = np.mgrid[0:64, 0:96]
    return np.stack([30 + xx * 2, 200 - yy * 2, 60 + i * 10 + xx + yy], axis=2).astype(np.uint8)


def _composite(rgb: np.ndarray, matrix: str, full_range: bool) -> np.ndarray:
    """I420 planes of ``rgb`` in ``matrix`` and range, as the frame graph makes them."""
    from av.video.reformatter import ColorRange, Colorspace

    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p",
        dst_colorspace=Colorspace.ITU709 if matrix == "bt709" else Colorspace.ITU601,
        dst_color_range=ColorRange.JPEG if full_range else ColorRange.MPEG,
    )
    return frame.to_ndarray()


def _decoded_rgb(path) -> tuple[list[np.ndarray], av.codec.context.CodecContext]:
    """Decoded frames as RGB by the stream's own matrix and range tags, as players read them."""
    from av.video.reformatter import ColorRange, Colorspace

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        ctx = stream.codec_context
        space = Colorspace.ITU709 if ctx.colorspace == 1 else Colorspace.ITU601
        rng = ColorRange.JPEG if ctx.color_range == 2 or ctx.pix_fmt.startswith("yuvj") else ColorRange.MPEG
        to_rgb = {"format": "rgb24", "src_colorspace": space, "src_color_range": rng}
        return [f.reformat(**to_rgb).to_ndarray() for f in c.decode(stream)], ctx


@pytest.mark.parametrize("matrix, full_range", [("bt709", True), ("bt601", False), ("bt709", False)])
@pytest.mark.parametrize("codec, suffix", [("prores_ks", ".mov"), ("mjpeg", ".mkv"), ("libx264rgb", ".mkv")])
def test_encoders_without_420_get_the_picture_in_their_own_format(tmp_path, codec, suffix, matrix, full_range):
    """ProRes (4:2:2 10-bit, limited range only), MJPEG (full range) and libx264rgb (RGB) take
    no plain 4:2:0: the composite is converted in the stream's matrix and range, and tagged so.
    Read back by its tags it is the composite's picture within 2 code values on average; a wrong
    matrix or range is 5 to 8 off."""
    layout = Layout(96, 64, "i420", full_range, matrix)
    out = tmp_path / f"out{suffix}"
    sink = FileSink(out, layout, rate=Fraction(25), time_base=Fraction(1, 25), codec=codec)
    pictures = [_gradient(i) for i in range(3)]
    for i, rgb in enumerate(pictures):
        planes = _composite(rgb, matrix, full_range)
        sink.write(Frame(planes, "i420", i, Fraction(1, 25), i), planes, np.zeros((64, 96), np.uint8))
    sink.close()
    frames, ctx = _decoded_rgb(out)
    assert len(frames) == 3
    if codec == "prores_ks":
        assert ctx.color_range == 1 and ctx.pix_fmt == "yuv422p10le"  # ProRes decoders know limited range only
    for got, want in zip(frames, pictures):
        seen = planes_to_rgb(_composite(want, matrix, full_range), "i420", matrix, full_range)  # what the planes say
        assert np.abs(got.astype(int) - seen.astype(int)).mean() < 2.0


def test_a_file_that_got_no_frame_is_removed(tmp_path, clips):
    """A run that fails or stops before its first frame leaves nothing, even with audio copied."""
    out = tmp_path / "out.mp4"
    with av.open(str(clips["aac.mp4"])) as c:
        sink = FileSink(out, LAYOUT, rate=Fraction(25), time_base=Fraction(1, 25), audio_streams=c.streams.audio)
        for packet in c.demux(c.streams.audio[0]):
            if packet.dts is not None:
                sink.write_packet(packet)
        sink.close()
    assert list(tmp_path.iterdir()) == []


def test_a_failing_audio_flush_still_finishes_the_file(tmp_path, clips, monkeypatch, caplog):
    """The end of a run that cannot flush its re-encoded audio (here a double: the encoder's
    last packets raise, as a full disk would) still finishes a playable file, kept under its
    partial name, since its end is missing, and said so."""
    from p3m_live.video import tracks

    def flush_fails(self):
        raise OSError(28, "No space left on device")

    out = tmp_path / "out.webm"
    with av.open(str(clips["aac.mp4"])) as c:
        sink = FileSink(out, LAYOUT, rate=Fraction(25), time_base=Fraction(1, 25), audio_streams=c.streams.audio)
        for i in range(4):
            rgb = shapes_frame(i, 96, 64)
            sink.write(Frame(rgb, "rgb", i, Fraction(1, 25), i), cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), rgb[..., 0])
        monkeypatch.setattr(tracks.Track, "flush", flush_fails)
        with pytest.raises(OSError, match="No space"):
            sink.close()
    assert not out.exists() and len(probe(partial_path(out))["times"]) == 4
    assert f"what was done is in {partial_path(out)}" in caplog.text


def test_a_packet_the_muxer_refuses_is_one_line(run, clips, tmp_path, capsys, monkeypatch):
    """Real FFmpeg refusing a real packet: ADTS AAC into a fragmented MP4 without aac_adtstoasc
    (as if MP4 took ADTS) is refused with FFmpeg's generic -1; that is one line with the way
    out, and the output is not passed off as whole."""
    from p3m_live.video import tracks

    monkeypatch.setattr(tracks, "ADTS_FORMATS", {"mpegts", "adts", "mp4"})
    assert run(clips["aac.ts"], "-o", tmp_path / "out.mp4") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        "p3m-live: error: out.mp4: the mp4 muxer refused the source's streams (it gives no reason); "
        "try an .mkv output, which takes almost any stream"
    )
    assert not (tmp_path / "out.mp4").exists()


def test_a_container_that_cannot_hold_the_video_says_so_once(run, clips, tmp_path, capsys):
    """Ogg takes no H.264: FFmpeg's muxer refuses the header, and the line names the video
    codec (not "the source's streams"), once: closing the output fails the same way, and
    that echo is not printed again."""
    assert run(clips["aac.mp4"], "-o", tmp_path / "out.ogv") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == (
        "p3m-live: error: out.ogv: the ogv muxer cannot hold libx264 video; pick a --codec it takes, "
        "or use .mp4, .mov or .mkv"
    )
    assert not any("libx264 video" in line for line in lines[:-1])
    assert not list(tmp_path.glob("out.ogv*"))


def test_mov_keeps_a_language_under_the_twin_its_table_has():
    from p3m_live.video.tracks import written_language

    assert written_language("mov", "deu") == "ger" and written_language("mov", "ger") == "ger"
    assert written_language("mov", "fre") == "fra"  # QuickTime's table has the other twin here
    assert written_language("mov", "eng") == "eng" and written_language("mp4", "deu") == "deu"
