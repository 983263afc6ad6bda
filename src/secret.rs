//! Secrets in newtypes whose `Debug` never shows the value.

use std::fmt;

macro_rules! secret {
    ($name:ident) => {
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);
        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                $name(s.into())
            }
            pub fn expose(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}

secret!(ClientSecret);
secret!(SessionSecret);
secret!(AuthorizationCode);
secret!(AccessToken);
secret!(RefreshToken);
secret!(PkceVerifier);
secret!(PrivateKeyPem);
secret!(ServiceSecret);
secret!(PlatformToken);

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn debug_output_never_contains_the_secret() {
        let s = ClientSecret::new("hunter2");
        assert_eq!(format!("{s:?}"), "ClientSecret(..)");
        assert!(!format!("{:?}", SessionSecret::new("topsecret")).contains("topsecret"));
    }
}
