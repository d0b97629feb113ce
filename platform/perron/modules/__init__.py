"""The machinery that loads modules and joins them to the platform (internal).

Modules never import this package: their whole surface is :mod:`perron.sdk`.
"""
