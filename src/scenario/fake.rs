//! `${faker.METHOD}`: fake data from the `fake` crate, for the methods of Python
//! Faker that load-test scripts use most.

use fake::Fake;
use fake::faker::{address, company, internet, job, lorem, name, phone_number};

/// A supported faker method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeKind {
    /// `name`: a full name.
    Name,
    /// `first_name`.
    FirstName,
    /// `last_name`.
    LastName,
    /// `email`: a safe e-mail address (example domains).
    Email,
    /// `user_name`.
    UserName,
    /// `password`.
    Password,
    /// `address`: street, city, state and zip code.
    Address,
    /// `city`.
    City,
    /// `country`.
    Country,
    /// `zipcode` / `postcode`.
    ZipCode,
    /// `phone_number`.
    PhoneNumber,
    /// `company`.
    Company,
    /// `job`.
    Job,
    /// `word`.
    Word,
    /// `sentence`.
    Sentence,
    /// `text`: a short paragraph.
    Text,
}

impl FakeKind {
    /// The method names, as in Python Faker.
    pub const NAMES: &'static [&'static str] = &[
        "name",
        "first_name",
        "last_name",
        "email",
        "user_name",
        "password",
        "address",
        "city",
        "country",
        "zipcode",
        "postcode",
        "phone_number",
        "company",
        "job",
        "word",
        "sentence",
        "text",
    ];

    /// The kind for a Faker method name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "name" => Self::Name,
            "first_name" => Self::FirstName,
            "last_name" => Self::LastName,
            "email" | "safe_email" => Self::Email,
            "user_name" => Self::UserName,
            "password" => Self::Password,
            "address" => Self::Address,
            "city" => Self::City,
            "country" => Self::Country,
            "zipcode" | "postcode" => Self::ZipCode,
            "phone_number" => Self::PhoneNumber,
            "company" => Self::Company,
            "job" => Self::Job,
            "word" => Self::Word,
            "sentence" => Self::Sentence,
            "text" => Self::Text,
            _ => return None,
        })
    }

    /// One fresh value.
    pub fn generate(self) -> String {
        use address::en as addr;
        match self {
            Self::Name => name::en::Name().fake(),
            Self::FirstName => name::en::FirstName().fake(),
            Self::LastName => name::en::LastName().fake(),
            Self::Email => internet::en::SafeEmail().fake(),
            Self::UserName => internet::en::Username().fake(),
            Self::Password => internet::en::Password(10..16).fake(),
            Self::Address => {
                let number: String = addr::BuildingNumber().fake();
                let street: String = addr::StreetName().fake();
                let city: String = addr::CityName().fake();
                let state: String = addr::StateAbbr().fake();
                let zip: String = addr::ZipCode().fake();
                format!("{number} {street}, {city}, {state} {zip}")
            }
            Self::City => addr::CityName().fake(),
            Self::Country => addr::CountryName().fake(),
            Self::ZipCode => addr::ZipCode().fake(),
            Self::PhoneNumber => phone_number::en::PhoneNumber().fake(),
            Self::Company => company::en::CompanyName().fake(),
            Self::Job => job::en::Title().fake(),
            Self::Word => lorem::en::Word().fake(),
            Self::Sentence => lorem::en::Sentence(4..10).fake(),
            Self::Text => lorem::en::Paragraph(2..4).fake(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FakeKind;

    #[test]
    fn every_name_generates_text() {
        for name in FakeKind::NAMES {
            let kind = FakeKind::from_name(name).expect(name);
            assert!(!kind.generate().trim().is_empty(), "{name}");
        }
        assert!(FakeKind::Email.generate().contains('@'));
        assert_eq!(FakeKind::from_name("nope"), None);
    }
}
