"""The Bria HTTP client: the only package that imports httpx.

``client`` has one method per endpoint of both generations; ``session`` sends one request
properly (headers, limiter, retries, typed errors); ``answers`` reads Bria's answers tolerantly;
``env`` finds the API root and the token; ``result_links`` downloads results; ``limiter`` and
``retry`` pace and repeat requests; ``inline`` streams base64 image bodies.
"""
