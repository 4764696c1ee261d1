"""Evidence beside the pixels: provenance (C2PA, IPTC/XMP, generator metadata, watermarks) and faces
(ID-photo checks and the face crop)."""
