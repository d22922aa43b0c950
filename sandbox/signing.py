"""RSA signatures both ways: the client's request signature and the sandbox's callbacks.

Written from Salt Edge's public signature guide, independently of the addon's client:
base64 of RSA PKCS#1 v1.5 with SHA-256, over ``"<Expires-at>|<METHOD>|<URL>|<body>"`` for
requests and ``"<callback URL>|<body>"`` for callbacks. Only cryptography 3.4 APIs.
"""

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def generate_private_key_pem(bits=2048):
    """A new unencrypted PKCS#8 PEM RSA private key (bytes)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits, backend=default_backend())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem):
    """The private key object of a PEM (bytes or str)."""
    if isinstance(pem, str):
        pem = pem.encode()
    return serialization.load_pem_private_key(pem, password=None, backend=default_backend())


def load_public_key(pem):
    """The public key object of a PEM public key, or of the public half of a private PEM."""
    if isinstance(pem, str):
        pem = pem.encode()
    if b"PRIVATE KEY" in pem:
        return load_private_key(pem).public_key()
    return serialization.load_pem_public_key(pem, backend=default_backend())


def public_pem(private_key):
    """The SubjectPublicKeyInfo PEM (bytes) of a private key object."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def request_message(expires_at, method, url, body):
    """The bytes a request signature covers; ``body`` is the raw body (bytes, may be empty)."""
    head = f"{expires_at}|{method.upper()}|"
    url_bytes = url if isinstance(url, bytes) else url.encode("utf-8")
    return head.encode("utf-8") + url_bytes + b"|" + (body or b"")


def callback_message(url, body):
    """The bytes a callback signature covers."""
    return url.encode("utf-8") + b"|" + (body or b"")


def sign(private_key, message):
    """Base64 RSA-SHA256 PKCS#1 v1.5 signature (str) of ``message`` (bytes)."""
    raw = private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def verify(public_key, message, signature_b64):
    """Whether ``signature_b64`` is a valid signature of ``message`` by ``public_key``."""
    try:
        raw = base64.b64decode(signature_b64.strip(), validate=True)
    except (binascii.Error, ValueError, AttributeError):
        return False
    try:
        public_key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
