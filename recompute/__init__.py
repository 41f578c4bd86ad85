"""recompute"""
