"""storage/blobs"""
