"""The Jupyter face of kestra_nb: the `%%flow` magic, the live execution view and the server extension.

Nothing here is imported by the engine or by `import kestra_nb`: the magic module is loaded by
`%load_ext kestra_nb` (which registers the execution's rich display too), the extension by Jupyter Server.
"""
from __future__ import annotations
