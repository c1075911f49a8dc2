package kofile

import (
	"bytes"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"sync"
)

// SignatureMagic ends a signed module file.
const SignatureMagic = "~Module signature appended~\n"

// moduleSignatureSize is sizeof(struct module_signature).
const moduleSignatureSize = 12

// Signature is a module's appended signature as kmod 30's modinfo reports it.
type Signature struct {
	Algo     string // public key algorithm from struct module_signature ("RSA", "DSA")
	IDType   string // "PGP", "X509" or "PKCS#7" (modinfo's sig_id)
	Signer   string // modinfo's signer: for PKCS#7 the issuer's commonName
	KeyID    []byte // modinfo's sig_key: for PKCS#7 the issuer serial number's magnitude
	HashAlgo string // modinfo's sig_hashalgo: for PKCS#7 OpenSSL's name of the digest OID
	Sig      []byte // modinfo's signature: for PKCS#7 the signer's encrypted digest
}

var (
	pkeyAlgo   = []string{"DSA", "RSA"}
	pkeyHash   = []string{"md4", "md5", "sha1", "rmd160", "sha256", "sha384", "sha512", "sha224", "sm3"}
	pkeyIDType = []string{"PGP", "X509", "PKCS#7"}
)

const pkeyIDPKCS7 = 2

// Signature returns the appended signature, or nil, nil when the image does not end with
// SignatureMagic. A damaged signature gives a *FormatError; kmod then shows no signature.
func (f *File) Signature() (*Signature, error) {
	sig, err := ParseSignature(f.Image())
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.File = f.Name
		}
		return nil, err
	}
	return sig, nil
}

// ParseSignature parses the signature appended to a module image (see File.Signature).
func ParseSignature(image []byte) (*Signature, error) {
	if !bytes.HasSuffix(image, []byte(SignatureMagic)) {
		return nil, nil
	}
	size := len(image) - len(SignatureMagic)
	bad := func(off int, format string, args ...any) error {
		return &FormatError{Off: int64(off), Msg: "module signature: " + fmt.Sprintf(format, args...), Err: ErrCorrupt}
	}
	if size < moduleSignatureSize {
		return nil, bad(0, "no room for struct module_signature")
	}
	size -= moduleSignatureSize
	h := image[size : size+moduleSignatureSize]
	algo, hash, idType, signerLen, keyIDLen := h[0], h[1], h[2], int(h[3]), int(h[4])
	sigLen := int64(binary.BigEndian.Uint32(h[8:]))
	if int(algo) >= len(pkeyAlgo) || int(hash) >= len(pkeyHash) || int(idType) >= len(pkeyIDType) {
		return nil, bad(size, "unknown algorithm %d, hash %d or id type %d", algo, hash, idType)
	}
	if sigLen == 0 || int64(size) < sigLen+int64(signerLen)+int64(keyIDLen) {
		return nil, bad(size, "signature length %d, signer length %d and key id length %d exceed %d bytes", sigLen, signerLen, keyIDLen, size)
	}
	sigStart := size - int(sigLen)
	s := &Signature{Algo: pkeyAlgo[algo], IDType: pkeyIDType[idType]}
	if idType == pkeyIDPKCS7 {
		if err := s.parsePKCS7(image[sigStart:size]); err != nil {
			return nil, bad(sigStart, "PKCS#7: %v", err)
		}
		return s, nil
	}
	s.Sig = image[sigStart:size]
	s.KeyID = image[sigStart-keyIDLen : sigStart]
	s.Signer = string(image[sigStart-keyIDLen-signerLen : sigStart-keyIDLen])
	s.HashAlgo = pkeyHash[hash]
	return s, nil
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	ContentInfo      asn1.RawValue
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type signerInfo struct {
	Version                   int
	IssuerAndSerial           issuerAndSerial
	DigestAlgorithm           algorithmIdentifier
	AuthenticatedAttributes   asn1.RawValue `asn1:"optional,tag:0"`
	DigestEncryptionAlgorithm algorithmIdentifier
	EncryptedDigest           []byte
	UnauthenticatedAttributes asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial asn1.RawValue
}

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type attributeTypeAndValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

var (
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// parsePKCS7 reads what kmod's fill_pkcs7 reads with OpenSSL: the first SignerInfo's issuer
// commonName, serial number, digest algorithm and encrypted digest.
func (s *Signature) parsePKCS7(der []byte) error {
	var ci contentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		return fmt.Errorf("content info: %w", err)
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return fmt.Errorf("content type %v is not signedData", ci.ContentType)
	}
	var sd signedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return fmt.Errorf("signed data: %w", err)
	}
	if len(sd.SignerInfos) == 0 {
		return errors.New("no signer info")
	}
	si := sd.SignerInfos[0]
	serial := si.IssuerAndSerial.Serial
	if serial.Class != asn1.ClassUniversal || serial.Tag != asn1.TagInteger {
		return fmt.Errorf("serial number has tag %d, want INTEGER", serial.Tag)
	}
	signer, err := issuerName(si.IssuerAndSerial.Issuer.FullBytes)
	if err != nil {
		return err
	}
	s.Signer = signer
	s.KeyID = magnitude(serial.Bytes)
	s.HashAlgo = opensslDigestName(si.DigestAlgorithm.Algorithm)
	s.Sig = si.EncryptedDigest
	return nil
}

// issuerName returns the value of the first commonName of an X.509 Name, or, like kmod's
// x509_name_to_str, the value of the last attribute when there is no commonName; "" for an
// empty name. The value is cut at its first NUL as a C string would be.
func issuerName(der []byte) (string, error) {
	var rdns []asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &rdns); err != nil || len(rest) > 0 {
		if err == nil {
			err = errors.New("trailing data")
		}
		return "", fmt.Errorf("issuer: %w", err)
	}
	var last *attributeTypeAndValue
	for _, rdn := range rdns {
		var atvs []attributeTypeAndValue
		if _, err := asn1.UnmarshalWithParams(rdn.FullBytes, &atvs, "set"); err != nil {
			return "", fmt.Errorf("issuer attribute: %w", err)
		}
		for i := range atvs {
			last = &atvs[i]
			if atvs[i].Type.Equal(oidCommonName) {
				return cstr(atvs[i].Value.Bytes), nil
			}
		}
	}
	if last == nil {
		return "", nil
	}
	return cstr(last.Value.Bytes), nil
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// opensslDigestName returns what OpenSSL's OBJ_obj2txt(no_name=0) gives for a digest OID:
// the long name when OpenSSL knows the OID, the dotted form otherwise.
func opensslDigestName(oid asn1.ObjectIdentifier) string {
	if name, ok := digestNames()[oid.String()]; ok {
		return name
	}
	return oid.String()
}

// digestNames is built on first use: a package-level map literal is built at start-up, in every
// process.
var digestNames = sync.OnceValue(func() map[string]string {
	return map[string]string{
		"1.2.840.113549.2.2":      "md2",
		"1.2.840.113549.2.4":      "md4",
		"1.2.840.113549.2.5":      "md5",
		"1.3.14.3.2.26":           "sha1",
		"1.3.36.3.2.1":            "ripemd160",
		"2.16.840.1.101.3.4.2.1":  "sha256",
		"2.16.840.1.101.3.4.2.2":  "sha384",
		"2.16.840.1.101.3.4.2.3":  "sha512",
		"2.16.840.1.101.3.4.2.4":  "sha224",
		"2.16.840.1.101.3.4.2.5":  "sha512-224",
		"2.16.840.1.101.3.4.2.6":  "sha512-256",
		"2.16.840.1.101.3.4.2.7":  "sha3-224",
		"2.16.840.1.101.3.4.2.8":  "sha3-256",
		"2.16.840.1.101.3.4.2.9":  "sha3-384",
		"2.16.840.1.101.3.4.2.10": "sha3-512",
		"2.16.840.1.101.3.4.2.11": "shake128",
		"2.16.840.1.101.3.4.2.12": "shake256",
		"1.2.156.10197.1.401":     "sm3",
		// OpenSSL prints the long name of the signature OIDs some signers put in the digest slot.
		"1.2.840.113549.1.1.1":  "rsaEncryption",
		"1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
	}
})

// magnitude returns the big-endian magnitude of a two's complement integer without leading
// zero bytes, as OpenSSL's BN_bn2bin(ASN1_INTEGER_to_BN()) gives it.
func magnitude(b []byte) []byte {
	v := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		v.Sub(new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))), v)
	}
	return v.Bytes()
}
