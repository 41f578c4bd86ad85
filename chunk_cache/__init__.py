"""chunk_cache"""
