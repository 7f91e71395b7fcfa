"""The source's audio and subtitle streams in an output file.

A stream is copied packet for packet wherever the output's muxer takes it, and the
muxer itself is asked (:func:`muxer_takes`), because FFmpeg's codec lists are not
the whole truth: MOV lists FLAC and Opus but its muxer takes them in MP4 only, and
MPEG-TS lists nothing at all yet takes AAC. Audio a muxer refuses is re-encoded to
the container's default codec, at a sample rate that encoder has (Opus has no
44.1 kHz); text subtitles it refuses are converted to its text codec (mov_text,
WebVTT), and other subtitles are left out with a warning.
"""

from __future__ import annotations

import functools
import io
import logging
from fractions import Fraction

import av
import numpy as np
from av.bitstream import BitStreamFilterContext

from ..errors import P3MError, reason

log = logging.getLogger("p3m_live")

GAP = 0.25  # seconds: sound this far after the samples so far starts later, not at once
STREAM_KEYS = ("language", "title")  # per stream: which audio track is which
# Muxers that carry AAC in ADTS frames, as MPEG-TS recordings (camcorders, broadcasts) hold
# it. Every other muxer wants raw AAC with its config, and MP4 and MOV written in fragments
# do not convert ADTS themselves, so it goes through FFmpeg's aac_adtstoasc.
ADTS_FORMATS = {"mpegts", "adts"}
# Text subtitles a muxer does not take as they are are converted to the text codec it has,
# as HandBrake does (ffmpeg needs -c:s mov_text): SubRip and ASS into MP4 and MOV become
# mov_text, into WebM WebVTT. Bitmap subtitles (DVD, Blu-ray) cannot become text.
TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}
SUBTITLE_CODECS = {"mp4": "mov_text", "mov": "mov_text", "ipod": "mov_text", "webm": "webvtt"}


# ISO 639-2's twenty languages with two codes, bibliographic and terminological (German:
# "ger" and "deu"), both ways round.
_TWINS = (
    "alb sqi arm hye baq eus bur mya chi zho cze ces dut nld fre fra geo kat ger deu "
    "gre ell ice isl mac mkd mao mri may msa per fas rum ron slo slk tib bod wel cym"
).split()
ISO639_TWINS = {**dict(zip(_TWINS[::2], _TWINS[1::2])), **dict(zip(_TWINS[1::2], _TWINS[::2]))}


@functools.cache
def mov_keeps(code: str) -> bool:
    """Whether FFmpeg's MOV muxer writes the language ``code``: it keeps only the codes of
    QuickTime's old language table, which holds one twin of some ISO 639-2 pairs ("ger",
    not "deu") and the other of others ("fra", not "fre"). Asked of the muxer itself, with a
    one-packet MOV in memory."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mov") as out:
        s = out.add_stream("pcm_s16le", rate=8000)
        s.layout = "mono"
        s.metadata["language"] = code
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        for packet in [*s.encode(frame), *s.encode(None)]:
            out.mux(packet)
    with av.open(io.BytesIO(buf.getvalue())) as back:
        return back.streams.audio[0].metadata.get("language") == code


def written_language(format_name: str, code: str) -> str:
    """``code`` as the ``format_name`` muxer can keep it: in MOV, its ISO 639-2 twin where only
    that one is in QuickTime's table (a German track stays German); elsewhere as it is."""
    if format_name != "mov" or mov_keeps(code):
        return code
    twin = ISO639_TWINS.get(code)
    return twin if twin is not None and mov_keeps(twin) else code


def stream_metadata(stream: av.stream.Stream, format_name: str) -> dict[str, str]:
    """What tells one of ``stream``'s siblings from another (language, title), as the
    ``format_name`` muxer keeps it."""
    kept = {k: v for k, v in stream.metadata.items() if k in STREAM_KEYS}
    if "language" in kept:
        kept["language"] = written_language(format_name, kept["language"])
    return kept


# Muxers asked through another: RTSP's cannot write a header without its server, and sends
# each stream through an RTP muxer, which can.
ASKED_AS = {"rtsp": "rtp"}


def muxer_takes(format_name: str, template: av.stream.Stream) -> bool:
    """Whether FFmpeg's ``format_name`` muxer takes a copy of ``template``: a header is
    written in memory with it, and the muxer says yes or no."""
    try:
        with av.open(io.BytesIO(), "w", format=ASKED_AS.get(format_name, format_name)) as probe:
            probe.add_stream_from_template(template, opaque=True)
            probe.start_encoding()
    except (ValueError, av.error.FFmpegError):
        return False
    return True


def copied_stream(
    container: av.container.OutputContainer, template: av.stream.Stream, keep_tag: bool = False
) -> av.stream.Stream:
    """A stream of ``container`` for ``template``'s packets as they are: its parameters, time
    base, language and title. No encoder is looked up (``opaque``), so streams whose decoder
    is named otherwise than any encoder (AV1's libdav1d) copy too. ``keep_tag`` keeps the
    codec tag (HEVC's hvc1, which players need), for a copy into the same kind of container."""
    out = container.add_stream_from_template(template, opaque=True)
    out.time_base = template.time_base
    if keep_tag and template.codec_context is not None and template.codec_context.codec_tag.strip("\0 "):
        out.codec_context.codec_tag = template.codec_context.codec_tag
    out.metadata.update(stream_metadata(template, container.format.name))
    return out


# Muxers that take one sample rate only, which no encoder's list says: FFmpeg's MXF muxer
# writes 48 kHz audio alone (broadcast's rate).
MUXER_RATES = {"mxf": 48000}


def encoder_rate(codec: str, rate: int, muxer: str = "") -> int:
    """The sample rate to encode ``rate`` Hz audio at with ``codec`` into ``muxer``: the
    muxer's one rate where it has one, else the same where the encoder takes it, else the
    next higher one it has (44.1 kHz -> 48 kHz for Opus)."""
    if muxer in MUXER_RATES:
        return MUXER_RATES[muxer]
    rates = av.Codec(codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    higher = [r for r in rates if r > rate]
    return min(higher) if higher else max(rates)


# FFmpeg's default layout for each channel count (av_channel_layout_default).
USUAL_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


@functools.cache
def encoder_layout(codec: str, rate: int, layout: str) -> str:
    """The channel layout to encode ``layout`` audio in with ``codec``: the same where the
    encoder opens with it, else the usual layout of as many channels (Opus has 5.1 but not
    the 5.1(side) of AC-3 and DTS), else stereo, as ffmpeg picks the nearest one; the
    encoder's resampler moves the channels. Asked of the encoder itself."""
    problem = None
    usual = USUAL_LAYOUTS.get(len(av.AudioLayout(layout).channels), "stereo")
    for candidate in dict.fromkeys([layout, usual, "stereo"]):
        ctx = av.CodecContext.create(codec, "w")
        ctx.sample_rate, ctx.layout = rate, candidate
        formats = av.Codec(codec, "w").audio_formats
        if formats:
            ctx.format = formats[0]
        try:
            ctx.open()
        except av.error.FFmpegError as e:
            problem = problem or e
            continue
        return candidate
    raise P3MError(f"audio: the {codec} encoder cannot take {layout} audio ({reason(problem)}); try an .mkv output")


class Track:
    """One of the source's audio or subtitle streams in the output: copied (ADTS AAC through
    aac_adtstoasc where the muxer wants raw AAC), or re-encoded as ``codec`` (audio, and text
    subtitles converted, see ``SUBTITLE_CODECS``)."""

    def __init__(self, container: av.container.OutputContainer, src: av.stream.Stream, codec: str | None) -> None:
        self._filter: BitStreamFilterContext | None = None
        self._encoder: av.stream.Stream | None = None
        self._next_sample: int | None = None
        if codec is None:
            self.stream = copied_stream(container, src)
            ctx = src.codec_context
            if ctx.name == "aac" and not ctx.extradata and container.format.name not in ADTS_FORMATS:
                self._filter = BitStreamFilterContext("aac_adtstoasc", src)
            return
        if src.type == "subtitle":
            src.codec_context.open()  # the decoder makes the ASS header that text encoders start from
            self.stream = self._encoder = container.add_stream(codec)
            self.stream.codec_context.subtitle_header = src.codec_context.subtitle_header
            self.stream.time_base = self.stream.codec_context.time_base = src.time_base
        else:
            rate = encoder_rate(codec, src.codec_context.sample_rate, container.format.name)
            self.stream = self._encoder = container.add_stream(codec, rate=rate)
            self.stream.layout = encoder_layout(codec, rate, src.codec_context.layout.name)
        self.stream.metadata.update(stream_metadata(src, container.format.name))

    def packets(self, packet: av.Packet) -> list[av.Packet]:
        """What to mux for one of the source's packets."""
        if self._encoder is None:
            out = self._filter.filter(packet) if self._filter is not None else [packet]
            for p in out:
                p.stream = self.stream
            return out
        if packet.stream.type == "subtitle":
            return self._subtitle(packet)
        try:
            frames = packet.decode()
        except av.error.InvalidDataError as e:  # like a damaged video packet: skipped, the run goes on
            log.warning("audio: skipped a damaged packet (%s)", e)
            return []
        encoded = []
        for frame in frames:
            # The encoder gets times counted in samples from the first frame's time, so its
            # priming (1024 samples for AAC) is marked as before the start and players skip it.
            rate = frame.sample_rate
            ahead = (
                self._next_sample is not None
                and frame.time is not None
                and (frame.time * rate - self._next_sample > GAP * rate)
            )  # a gap (a live source reopened): kept, not closed up
            if self._next_sample is None or ahead:
                self._next_sample = round(frame.time * rate) if frame.time is not None else 0
            frame.pts, frame.time_base = self._next_sample, Fraction(1, rate)
            self._next_sample += frame.samples
            encoded += self._encoder.encode(frame)
        return encoded

    def _subtitle(self, packet: av.Packet) -> list[av.Packet]:
        """A text cue in the output's text codec, at the source packet's time and for its
        duration (as cut to the part)."""
        try:
            cue = packet.stream.codec_context.decode2(packet)
            out = self._encoder.codec_context.encode_subtitle(cue) if cue is not None else None
        except av.error.FFmpegError as e:
            log.warning("subtitles: skipped a cue that could not be converted (%s)", e)
            return []
        if out is None:
            return []
        out.stream, out.time_base = self.stream, packet.time_base
        out.pts, out.dts, out.duration = packet.pts, packet.dts, packet.duration
        return [out]

    def flush(self) -> list[av.Packet]:
        """The encoder's last packets (nothing for a copy or a subtitle)."""
        if self._encoder is None or self._encoder.type == "subtitle":
            return []
        return self._encoder.encode(None)


# FFmpeg's muxers take sound that their players cannot read back. Raw PCM (a microphone's,
# a camcorder's) is copied only into containers made for it: MP4 takes it, which QuickTime
# and browsers cannot play. FLV (RTMP) and MPEG-TS (UDP, TCP, SRT) get only the codecs
# their readers and streaming services know: FLV takes Opus and FLAC (enhanced RTMP),
# which Twitch and YouTube do not; MPEG-TS takes FLAC and PCM, which no TS reader finds.
PCM_CONTAINERS = {"mov", "matroska", "mxf", "avi"}
TS_SOUND = {"aac", "mp2", "mp3", "ac3", "eac3", "opus", "dts", "truehd"}  # (the last two: Blu-ray's)
COPIED_SOUND = {"flv": {"aac", "mp3"}, "mpegts": TS_SOUND, "rtp_mpegts": TS_SOUND}
# What re-encoded sound becomes where FFmpeg's default is not what players and services
# take: AAC over RTMP (Twitch takes nothing else; FFmpeg's FLV default is MP3) and in
# MPEG-TS (its default is MP2).
AUDIO_CODECS = {"flv": "aac", "mpegts": "aac", "rtp_mpegts": "aac"}


def plays_back(muxer: str, codec: str) -> bool:
    """Whether sound in ``codec`` (its canonical name: ``mp3``, not the decoder's
    ``mp3float``) is copied into ``muxer`` where the muxer takes it (see ``COPIED_SOUND``):
    what its players can read back."""
    if muxer in COPIED_SOUND:
        return codec in COPIED_SOUND[muxer]
    return not codec.startswith("pcm_") or muxer in PCM_CONTAINERS


def open_track(container: av.container.OutputContainer, src: av.stream.Stream, label: str) -> Track | None:
    """``src`` in ``container`` (named ``label`` in warnings): a copy where its muxer takes
    one, else re-encoded audio or converted text subtitles, or None for subtitles it cannot
    hold in any form."""
    name, muxer = src.codec_context.name, container.format.name
    kept_out = src.type == "audio" and not plays_back(muxer, src.codec_context.codec.canonical_name)
    # MPEG-TS "takes" text cues, but as a private data stream that no player reads back.
    unreadable = kept_out or (muxer == "mpegts" and name in TEXT_SUBTITLES)
    if not unreadable and muxer_takes(muxer, src):
        return Track(container, src, None)
    if src.type != "audio":
        text = SUBTITLE_CODECS.get(muxer)
        if text is None or name not in TEXT_SUBTITLES:
            log.warning("subtitles: %s cannot go into %s; left out (.mkv keeps them)", name, label)
            return None
        log.info("subtitles: %s cannot go into %s as it is; converting it to %s", name, label, text)
        return Track(container, src, text)
    codec = AUDIO_CODECS.get(muxer) or av.Codec(container.default_audio_codec, "w").name
    if name.startswith("pcm_"):  # (a microphone's: encoding it is what is expected)
        log.info("audio: %s encoded as %s for %s", name, codec, label)
    else:
        log.warning("audio: %s cannot go into %s as it is; re-encoding it as %s", name, label, codec)
    return Track(container, src, codec)
