"""Reading and writing: the one safe image decoder, colour and orientation, crops and resizes, datasets
(folders, CSV manifests, Parquet shards), lazy image lists, streamed tables and results files."""
