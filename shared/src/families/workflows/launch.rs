//! Launch requests: the body of `POST /v1/workflows`, form-encoded (Rack
//! nested brackets) or JSON, checked and turned into a launch.
