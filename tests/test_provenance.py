"""Provenance signals, one section per check of aiornot.evidence.provenance, on fixtures built here (nothing
downloaded). The rule's own branches, on hand-built reports, are in test_provenance_rule.py."""

from __future__ import annotations

import datetime
import io
import json
import struct
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin, TiffImagePlugin

from aiornot.evidence import provenance
from aiornot.evidence.provenance import ProvenanceReport, Signal, combine_verdict, inspect, watermark
from conftest import FUZZ_FINDINGS

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
SD_V1_BITS = np.unpackbits(np.frombuffer(b"StableDiffusionV1", dtype=np.uint8))
SDXL_BITS = np.unpackbits(np.frombuffer((0xB3EC907BB19E).to_bytes(6, "big"), dtype=np.uint8))


# ------------------------------------------------------------------------------------------
# Fixture builders
# ------------------------------------------------------------------------------------------


def scene(height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    """A photo-like RGB image: smooth shading plus sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([120 + 80 * np.sin(6 * x + 1), 110 + 70 * np.cos(5 * y), 100 + 60 * np.sin(4 * (x + y))], -1)
    return np.clip(base + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)


def encode(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def png_with_text(**chunks: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    return encode(scene(), "PNG", pnginfo=info)


def xmp_packet(source_type: str | None = None, creator_tool: str | None = None) -> bytes:
    tool = f' xmp:CreatorTool="{creator_tool}"' if creator_tool else ""
    dst = f"<Iptc4xmpExt:DigitalSourceType>{IPTC}{source_type}</Iptc4xmpExt:DigitalSourceType>" if source_type else ""
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        f'xmlns:xmp="http://ns.adobe.com/xap/1.0/"{tool}>{dst}</rdf:Description></rdf:RDF></x:xmpmeta>'
    ).encode()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def insert_before_iend(png: bytes, chunk: bytes) -> bytes:
    iend = png.rindex(b"IEND") - 4  # the length field precedes the chunk type
    return png[:iend] + chunk + png[iend:]


def jpeg_with_exif(base: dict[int, object] | None = None, sub: dict[int, object] | None = None) -> bytes:
    exif = Image.Exif()
    for tag, value in (base or {}).items():
        exif[tag] = value
    exif_ifd = exif.get_ifd(0x8769)
    for tag, value in (sub or {}).items():
        exif_ifd[tag] = value
    return encode(scene(), "JPEG", quality=92, exif=exif.tobytes())


CAMERA_BASE = {0x010F: "Canon", 0x0110: "Canon EOS 5D Mark IV"}
CAMERA_SUB = {
    0x829A: TiffImagePlugin.IFDRational(1, 125),
    0x829D: TiffImagePlugin.IFDRational(28, 10),
    0x8827: 200,
    0x9003: "2024:05:01 10:11:12",
}


def signal(report: ProvenanceReport, name: str) -> Signal:
    return next(s for s in report.signals if s.name == name)


def watermarked(bits: np.ndarray, height: int = 512, width: int = 512) -> np.ndarray:
    """Embed a watermark as the Stable Diffusion scripts do: DWT-DCT on OpenCV's BGR uint8."""
    embed = watermark.embed_max_dct()(watermarks=list(bits), wmLen=len(bits))
    bgr = np.ascontiguousarray(scene(height, width, seed=3)[:, :, ::-1])
    return np.ascontiguousarray(embed.encode(bgr)[:, :, ::-1])


# ------------------------------------------------------------------------------------------
# C2PA: a test CA and a leaf certificate, made here (c2pa rejects a lone self-signed cert)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c2pa_signer():
    pytest.importorskip("cryptography")
    import c2pa
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aiornot tests")])

    def usage(**flags: bool) -> x509.KeyUsage:
        fields = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                  "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{f: flags.get(f, False) for f in fields})

    now = datetime.datetime.now(datetime.UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, issuer: x509.Name, key, signing_key, *, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if ca:
            builder = builder.add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
        else:
            builder = (builder.add_extension(usage(digital_signature=True), critical=True)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                       .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                      critical=False))
        return builder.sign(signing_key, hashes.SHA256())

    ca_cert = certificate("aiornot test CA", name("aiornot test CA"), ca_key, ca_key, ca=True)
    leaf_cert = certificate("aiornot test signer", ca_cert.subject, leaf_key, ca_key, ca=False)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf_cert, ca_cert))
    key_pem = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    return c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key_pem, None)


def c2pa_sign(signer_info, source_type: str, image: bytes | None = None) -> bytes:
    import c2pa

    manifest = {
        "claim_generator_info": [{"name": "aiornot-test-generator", "version": "1.0"}],
        "title": "portrait.jpg",
        "format": "image/jpeg",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": IPTC + source_type}]}}],
    }
    output = io.BytesIO()
    with c2pa.Signer.from_info(signer_info) as signer, c2pa.Builder(json.dumps(manifest)) as builder:
        builder.sign(signer, "image/jpeg", io.BytesIO(image or encode(scene(), "JPEG", quality=90)), output)
    return output.getvalue()


@pytest.fixture(scope="module")
def signed_ai_jpeg(c2pa_signer) -> bytes:
    return c2pa_sign(c2pa_signer, "trainedAlgorithmicMedia")


def test_valid_c2pa_manifest_declaring_ai_is_strong_ai(signed_ai_jpeg):
    report = inspect(signed_ai_jpeg)
    c2pa_signal = signal(report, "c2pa")
    assert (c2pa_signal.status, c2pa_signal.strength) == ("found", "strong_ai")
    assert c2pa_signal.details["valid"] is True
    assert c2pa_signal.details["trusted"] is False  # our test CA is on no trust list
    assert c2pa_signal.details["digital_source_types"] == ["trainedAlgorithmicMedia"]
    assert "aiornot-test-generator" in c2pa_signal.details["claim_generator"]
    assert report.strongest() == "strong_ai"
    assert combine_verdict("real", 0.02, report)[0] == "ai"


def test_c2pa_manifest_becomes_invalid_when_pixels_are_tampered(signed_ai_jpeg):
    tampered = bytearray(signed_ai_jpeg)
    scan = tampered.rindex(b"\xff\xda")  # start of the main image's entropy-coded data
    for i in range(scan + 30, scan + 60):
        tampered[i] ^= 0x55
    report = inspect(bytes(tampered), check_watermark=False)
    c2pa_signal = signal(report, "c2pa")
    assert c2pa_signal.status == "invalid"
    assert c2pa_signal.details["valid"] is False
    assert "assertion.dataHash.mismatch" in c2pa_signal.details["failures"]
    # It declared AI, but an invalid manifest alone does not decide: shown, verdict unchanged.
    assert c2pa_signal.strength == "weak_ai"
    verdict, rule_en, rule_ko = combine_verdict("real", 0.1, report)
    assert verdict == "real"
    assert "invalid C2PA" in rule_en and "C2PA" in rule_ko


def test_c2pa_manifest_declaring_a_capture_is_weak_camera_and_never_flips_ai(c2pa_signer):
    report = inspect(c2pa_sign(c2pa_signer, "digitalCapture"), check_watermark=False)
    c2pa_signal = signal(report, "c2pa")
    assert (c2pa_signal.status, c2pa_signal.strength) == ("found", "weak_camera")
    assert combine_verdict("ai", 0.97, report)[0] == "ai"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_file_without_manifest_has_no_c2pa_signal(fmt):
    report = inspect(encode(scene(), fmt), check_watermark=False)
    assert (signal(report, "c2pa").status, signal(report, "c2pa").strength) == ("not_found", "none")


# ------------------------------------------------------------------------------------------
# IPTC DigitalSourceType in XMP
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                                  "algorithmicMedia"])
def test_xmp_digital_source_type_in_jpeg_declares_ai(code):
    report = inspect(encode(scene(), "JPEG", quality=90, xmp=xmp_packet(code)))
    xmp_signal = signal(report, "xmp_source_type")
    assert (xmp_signal.status, xmp_signal.strength) == ("found", "strong_ai")
    assert xmp_signal.details["digital_source_types"] == [code]
    assert combine_verdict("real", 0.0, report)[0] == "ai"


def test_xmp_digital_source_type_in_png_itxt():
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp_packet("trainedAlgorithmicMedia").decode())
    report = inspect(encode(scene(), "PNG", pnginfo=info))
    assert signal(report, "xmp_source_type").strength == "strong_ai"


def test_raw_xmp_scan_finds_a_packet_pillow_does_not_see():
    # An iTXt chunk after the image data: Pillow's header-only getxmp() never reaches it.
    body = b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp_packet("trainedAlgorithmicMedia", "Midjourney")
    data = insert_before_iend(encode(scene(), "PNG"), png_chunk(b"iTXt", body))
    assert Image.open(io.BytesIO(data)).getxmp() == {}
    report = inspect(data)
    assert signal(report, "xmp_source_type").strength == "strong_ai"
    assert signal(report, "generator_metadata").details["generator"] == "Midjourney"


def test_xmp_declaring_digital_capture_is_weak_camera_only():
    report = inspect(encode(scene(), "JPEG", quality=90, xmp=xmp_packet("digitalCapture")))
    assert signal(report, "xmp_source_type").strength == "weak_camera"
    assert combine_verdict("ai", 0.8, report)[0] == "ai"


def test_hostile_xmp_with_entities_is_refused_without_raising():
    laughs = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
              b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>')
    report = inspect(encode(scene(), "JPEG", quality=90, xmp=laughs))
    assert signal(report, "xmp_source_type").status == "error"
    assert report.strongest() == "none"


# ------------------------------------------------------------------------------------------
# Generator metadata
# ------------------------------------------------------------------------------------------


A1111_PARAMETERS = ("portrait photo of a woman, studio lighting\nNegative prompt: blurry\n"
                    "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x640, "
                    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly")
COMFY_PROMPT = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20}},
                           "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "model.safetensors"}}})
COMFY_WORKFLOW = json.dumps({"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}], "links": []})


def test_automatic1111_parameters_chunk():
    generator = signal(inspect(png_with_text(parameters=A1111_PARAMETERS)), "generator_metadata")
    assert (generator.status, generator.strength) == ("found", "strong_ai")
    assert generator.details["generator"] == "AUTOMATIC1111-style Stable Diffusion"
    assert generator.details["findings"][0]["field"] == "PNG text 'parameters'"


@pytest.mark.parametrize("chunks", [{"prompt": COMFY_PROMPT}, {"workflow": COMFY_WORKFLOW},
                                    {"prompt": COMFY_PROMPT, "workflow": COMFY_WORKFLOW}])
def test_comfyui_prompt_and_workflow_chunks(chunks):
    generator = signal(inspect(png_with_text(**chunks)), "generator_metadata")
    assert generator.strength == "strong_ai"
    assert generator.details["generator"] == "ComfyUI"


def test_text_chunks_that_only_look_like_generator_keys_are_not_evidence():
    report = inspect(png_with_text(prompt="say cheese", workflow="studio", parameters="f/8, 1/125 s"))
    assert signal(report, "generator_metadata").status == "not_found"


@pytest.mark.parametrize(("tag", "value", "generator"), [
    (0x0131, "Stable Diffusion XL 1.0", "Stable Diffusion"),
    (0x0131, "Midjourney", "Midjourney"),
    (0x0131, "DALL·E 3", "DALL·E"),
    (0x0131, "Adobe Firefly", "Adobe Firefly"),
    (0x0131, "NovelAI", "NovelAI"),
    (0x0131, "ComfyUI", "ComfyUI"),
    (0x010E, "generated with FLUX.1 [dev]", "FLUX"),
    (0x010E, "made by Google Imagen", "Google Imagen"),
])
def test_exif_text_naming_a_generator(tag, value, generator):
    report = inspect(jpeg_with_exif({tag: value}))
    found = signal(report, "generator_metadata")
    assert (found.strength, found.details["generator"]) == ("strong_ai", generator)


def test_exif_user_comment_with_a1111_parameters_in_unicode():
    comment = b"UNICODE\x00" + A1111_PARAMETERS.encode("utf-16-be")  # as A1111 writes JPEGs
    found = signal(inspect(jpeg_with_exif(sub={0x9286: comment})), "generator_metadata")
    assert found.strength == "strong_ai"
    assert found.details["findings"][0]["field"] == "EXIF UserComment"


@pytest.mark.parametrize("description", ["Imagen de perfil", "Kandinsky exhibition, Seoul", "a firefly at dusk",
                                         "solar flux measurement"])
def test_ordinary_words_are_not_generator_names(description):
    report = inspect(jpeg_with_exif({0x010E: description, 0x0131: "Adobe Photoshop 25.0 (Windows)"}))
    assert signal(report, "generator_metadata").status == "not_found"


# ------------------------------------------------------------------------------------------
# Stable Diffusion invisible watermark
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bits", "model"), [(SD_V1_BITS, "Stable Diffusion v1/v2"),
                                             (SDXL_BITS, "Stable Diffusion XL")])
def test_sd_watermark_is_decoded_from_a_lossless_file(bits, model):
    report = inspect(encode(watermarked(bits), "PNG"))
    mark = signal(report, "sd_watermark")
    assert (mark.status, mark.strength, mark.details["model"]) == ("found", "strong_ai", model)
    assert combine_verdict("real", 0.05, report)[0] == "ai"


def test_sd_watermark_does_not_survive_jpeg_q90_so_absence_means_nothing():
    # The documented limitation: one ordinary JPEG save (4:2:0 chroma, Pillow's and most apps'
    # default) destroys the mark, and the file is then judged by its pixels alone; a missing mark
    # is never evidence of a camera photo.
    report = inspect(encode(watermarked(SD_V1_BITS), "JPEG", quality=90))
    mark = signal(report, "sd_watermark")
    assert (mark.status, mark.strength) == ("not_found", "none")
    assert mark.details["bit_errors"]["Stable Diffusion v1/v2"] > 8
    assert combine_verdict("real", 0.3, report)[0] == "real"


def test_sd_watermark_survives_a_jpeg_without_chroma_subsampling():
    # Why JPEGs are still checked: the mark lives in the chroma (U) channel, which 4:4:4 keeps.
    mark = signal(inspect(encode(watermarked(SDXL_BITS), "JPEG", quality=90, subsampling=0)), "sd_watermark")
    assert (mark.status, mark.details["model"]) == ("found", "Stable Diffusion XL")


def test_an_unmarked_photo_has_no_watermark():
    mark = signal(inspect(encode(scene(512, 512, seed=9), "PNG")), "sd_watermark")
    assert mark.status == "not_found" and mark.details["checked"] is True
    assert min(mark.details["bit_errors"].values()) > 8


@pytest.mark.parametrize(("height", "width"), [(512, 512), (300, 457), (1030, 263)])
def test_the_vectorised_watermark_decoder_gives_the_library_decoders_bits(height, width):
    # The check computes the tile votes once with numpy instead of the library's Python loop per mark;
    # it must read exactly the bits the library reads, on marked, JPEG-damaged and unmarked pixels alike.
    library = watermark.embed_max_dct()
    marked = watermarked(SD_V1_BITS, height, width)
    damaged = np.asarray(Image.open(io.BytesIO(encode(watermarked(SDXL_BITS, height, width), "JPEG", quality=70))))
    for pixels in (marked, damaged, scene(height, width, seed=11)):
        bgr = np.ascontiguousarray(pixels[:, :, ::-1])
        votes = watermark.block_votes(library(watermarks=[], wmLen=1), bgr)
        for length in (SD_V1_BITS.size, SDXL_BITS.size, 7):
            expected = np.asarray(library(watermarks=[], wmLen=length).decode(bgr), dtype=bool)
            assert np.array_equal(watermark.decoded_bits(votes, length), expected)


def test_watermark_check_can_be_skipped():
    mark = signal(inspect(encode(watermarked(SDXL_BITS), "PNG"), check_watermark=False), "sd_watermark")
    assert mark.status == "not_found" and mark.details["checked"] is False


def test_a_missing_watermark_package_makes_the_check_unavailable_not_an_error(monkeypatch):
    # invisible-watermark is an optional extra: without it the check says so and changes nothing.
    marked = encode(watermarked(SDXL_BITS), "PNG")  # made with the real package, before it goes missing
    real_find_spec = watermark.importlib.util.find_spec
    monkeypatch.setattr(watermark.importlib.util, "find_spec", lambda name, *a: None if name == "imwatermark" else real_find_spec(name, *a))
    watermark.embed_max_dct.cache_clear()
    try:
        report = inspect(marked)
    finally:
        watermark.embed_max_dct.cache_clear()  # the next test loads the real decoder again
    mark = signal(report, "sd_watermark")
    assert (mark.status, mark.strength, mark.details["missing"]) == ("unavailable", "none", "imwatermark")
    assert "invisible-watermark" in mark.summary
    assert combine_verdict("real", 0.05, report)[0] == "real"  # the watermarked file is judged by its pixels alone
    assert all(s.status != "error" for s in report.signals)


def test_watermark_decoder_is_loaded_without_importing_torch():
    watermark.embed_max_dct()
    assert "imwatermark" not in sys.modules  # its __init__ (which imports torch) never ran
    assert "torch" not in sys.modules


# ------------------------------------------------------------------------------------------
# Camera EXIF
# ------------------------------------------------------------------------------------------


def test_camera_exif_is_weak_camera_evidence():
    report = inspect(jpeg_with_exif(CAMERA_BASE, CAMERA_SUB))
    camera = signal(report, "camera_exif")
    assert (camera.status, camera.strength) == ("found", "weak_camera")
    assert camera.details["Model"] == "Canon EOS 5D Mark IV"
    assert camera.details["ExposureTime"] == pytest.approx(1 / 125)
    assert camera.details["ISOSpeedRatings"] == 200
    assert report.strongest() == "weak_camera"
    json.dumps(report.to_dict())  # EXIF rationals were made JSON-safe


def test_a_maker_name_without_capture_settings_is_not_camera_evidence():
    camera = signal(inspect(jpeg_with_exif({0x010F: "Canon"})), "camera_exif")
    assert camera.status == "not_found"


# ------------------------------------------------------------------------------------------
# Empty and broken input
# ------------------------------------------------------------------------------------------


def test_a_file_with_nothing_declares_nothing():
    report = inspect(encode(scene(512, 512, seed=5), "PNG"))
    assert [s.status for s in report.signals] == ["not_found"] * 5
    assert [s.name for s in report.signals] == list(provenance.SIGNAL_LABELS)
    assert report.strongest() == "none"
    assert all(any("\uac00" <= ch <= "\ud7a3" for ch in s.summary_ko) for s in report.signals)
    assert json.loads(json.dumps(report.to_dict()))["strongest"] == "none"


@pytest.mark.parametrize("data", [
    b"",
    b"just a text file, not an image\n",
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
    bytes(range(256)) * 4,
])
def test_non_images_give_error_signals_without_raising(data):
    report = inspect(data)
    assert [s.status for s in report.signals] == ["error"] * 5
    assert report.strongest() == "none"
    assert report.signals[0].summary.startswith("not checked:")
    json.dumps(report.to_dict())


def test_a_truncated_jpeg_is_reported_not_raised():
    data = encode(scene(512, 512), "JPEG", quality=90)
    report = inspect(data[: len(data) // 2])
    assert signal(report, "sd_watermark").status == "error"
    assert {s.status for s in report.signals} <= {"not_found", "error"}


def test_inspect_refuses_a_path_instead_of_bytes():
    with pytest.raises(TypeError, match="bytes"):
        inspect("photo.jpg")  # type: ignore[arg-type]


def test_signal_rejects_unknown_status_and_makes_details_json_safe():
    with pytest.raises(ValueError, match="status"):
        Signal("c2pa", "maybe", "none", "", "", {})
    safe = Signal("x", "found", "none", "", "", {"raw": b"\xffab", "ratio": TiffImagePlugin.IFDRational(1, 3),
                                                 "nan": float("nan"), "t": (1, 2), "long": "a" * 5000})
    assert json.loads(json.dumps(safe.details)) == {"raw": "\ufffdab", "ratio": pytest.approx(1 / 3), "nan": None,
                                                    "t": [1, 2], "long": "a" * 300}


# ------------------------------------------------------------------------------------------
# Inputs the fuzzer found (tests/test_fuzz.py)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", FUZZ_FINDINGS)
def test_inspect_reports_fuzz_findings_without_raising(make) -> None:
    report = inspect(make())
    assert report.strongest() == "none"
    assert {s.status for s in report.signals} <= {"not_found", "error"}
