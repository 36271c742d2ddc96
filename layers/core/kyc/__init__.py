"""KYC deepfake screening: the code shared by every Lambda function of the stack.

Layout: ``domain`` holds pure rules (no AWS, no media library), ``media`` is where untrusted
video is opened and decoded (PyAV), ``aws`` is where AWS is called.
"""

__version__ = "0.1.0"
